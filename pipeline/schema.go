package pipeline

import _ "embed"

// JobSchema is the JSON Schema (draft 2020-12) of job message v1. ParseJob
// is the reference implementation; the schema is for producers that want to
// check messages before sending them, and for documentation.
//
//go:embed schema/job.v1.schema.json
var JobSchema []byte

// ResultSchema is the JSON Schema (draft 2020-12) of result v1.
//
//go:embed schema/result.v1.schema.json
var ResultSchema []byte
