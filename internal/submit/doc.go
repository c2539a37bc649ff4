// Package submit enqueues document jobs for tierq's workers: it reads
// documents (files, folders) or job lists (JSONL), turns each into a job
// message v1, uploads documents too large for a message to the input bucket
// and sends them by reference, and sends the messages to SQS in batches,
// retrying entries SQS reports as failed. A dry run instead classifies and
// prices every job with package tiering, without any AWS call.
//
// It is for: `tierq submit` and the demo, which calls Run directly and reads
// the returned Summary.
//
// It is not for: processing jobs or reading results (see worker and
// pipeline), fetching documents that are already in S3 (a dry run reports
// them as not estimated rather than downloading them), or deciding tiers
// itself: classification and prices come only from tiering, so a dry run and
// the worker agree.
//
// # Inputs
//
//   - a file is one document; its job ID is derived from the file name
//     (JobIDFromFileName) and its task, labels and so on come from Options;
//   - a folder means every regular, non-hidden file in it, sorted by name,
//     not recursing into subfolders;
//   - a file named *.jsonl holds one job message v1 per non-empty line. A line
//     may carry "file": "relative/path" (relative to the JSONL file's folder)
//     instead of text or document_uri; submit reads that file into the job
//     and strips the field.
//
// Every job is validated with jobv1.ParseJob's rules before anything is
// sent. An invalid input is reported with its file and line and skipped;
// the others are still sent. A job ID used twice in one run is an error for
// the later job.
//
// # Sending
//
// A job whose message would exceed Options.InlineLimit has its document
// uploaded to s3://{InputBucket}/{InputPrefix}{job_id}.txt and carries
// document_uri instead of text. Messages go out with SendMessageBatch, at
// most 10 entries and 1 MiB per call. Entries SQS reports as failed through
// no fault of the sender are sent again with jittered backoff; whatever
// still fails is listed in Summary.Failed, never dropped. Resending can
// duplicate a message SQS did store; that is safe because the worker writes
// one result per job ID.
//
// Raw mode sends each file verbatim, to put malformed messages on the queue
// on purpose. A dry run reads and validates exactly as a real run does, then
// classifies and prices each job with tiering.Config.EstimateRange.
package submit
