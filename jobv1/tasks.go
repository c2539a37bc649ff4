package jobv1

// Tasks a job can ask for.
const (
	TaskSummarize = "summarize"
	TaskClassify  = "classify"
	TaskExtract   = "extract"
	TaskCustom    = "custom"
)
