package submit_test

import (
	"context"
	"fmt"
	"io"

	"github.com/tierq/tierq/internal/submit"
)

// A dry run needs no AWS clients: it reads the jobs, classifies and prices
// them with package tiering, and returns the plan.
func ExampleRun_dryRun() {
	sum, err := submit.Run(context.Background(), submit.Options{
		Paths:  []string{"../../testdata/submit/example.jsonl"},
		DryRun: true,
	}, submit.Deps{}, io.Discard, io.Discard)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, j := range sum.Plan.Jobs {
		if j.Err != nil {
			fmt.Printf("%-10s not planned: %v\n", j.JobID, j.Err)
			continue
		}
		fmt.Printf("%-10s %-8s by rule %s\n", j.JobID, j.Decision.Tier, j.Decision.Rule)
	}
	fmt.Println("planned:", sum.Plan.Total.Jobs)
	// Output:
	// memo-1     economy  by rule size
	// ticket-2   economy  by rule task-classify
	// invoice-3  standard by rule task-extract
	// contract-4 premium  by rule override
	// stored-5   not planned: by reference: size unknown, not estimated
	// planned: 4
}

func ExampleJobIDFromFileName() {
	fmt.Println(submit.JobIDFromFileName("", "reports/Q3 report (final).txt"))
	fmt.Println(submit.JobIDFromFileName("run2-", "reports/Q3 report (final).txt"))
	// Output:
	// Q3-report-final.txt
	// run2-Q3-report-final.txt
}
