// Package taskprotect keeps a busy ECS task from being stopped by scale-in.
//
// When the service scales in, ECS picks tasks to stop; without protection it
// may pick one in the middle of a long Claude call. The ECS agent serves a
// task scale-in protection endpoint to every container
// ($ECS_AGENT_URI/task-protection/v1/state): a PUT of
// {"ProtectionEnabled": true, "ExpiresInMinutes": N} protects the task for N
// minutes (1 to 2,880) from scale-in and from deployments, a PUT with false
// clears it, and a GET reads it. Protection that is not renewed expires, so a
// worker that dies protected does not block scale-in for longer than N.
//
// Client speaks to that endpoint. Guard drives it from the number of jobs the
// worker holds: Busy(n) on every change. Protection goes on when n rises above
// 0, is renewed every Renew (half of Expires by default) while n stays above
// 0, and comes off when n has been 0 for Grace, so a worker that finishes a
// job and receives the next a moment later does not flap. The endpoint is
// called from one goroutine, never from Busy, so the worker is not slowed by
// it. Failures are logged at WARN and retried; they never stop the worker:
// without protection a task is only as exposed as it was before.
//
// It is for: the worker on ECS (EC2 or Fargate, agent 1.65.0 or later; the
// task role needs ecs:UpdateTaskProtection and ecs:GetTaskProtection, which
// the agent calls with it). Outside ECS (ECS_AGENT_URI unset) FromEnv returns
// nil and a Guard of a nil Client does nothing.
//
// It is not for: deciding when to scale (that is Application Auto Scaling's
// job, on queue backlog per task), protecting standalone tasks (ECS refuses:
// TASK_NOT_VALID), or draining on SIGTERM (the worker's drain does that).
package taskprotect
