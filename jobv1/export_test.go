package jobv1

// BigPromptJob gives the external tests the job of bigJob: parameters each
// within their own limits but over MaxPromptExtrasBytes together.
func BigPromptJob() string { return bigJob() }
