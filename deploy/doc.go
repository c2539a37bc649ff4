// Package deploy holds tierq's deployment files (docker-compose.yml at the
// repository root, the ECS task definition, the worker's IAM policy, the
// LocalStack init hook, and cloudformation/: the whole AWS stack in one
// template with the guardrail definition the simulator shares) and the
// tests that keep them correct on machines without Docker or AWS. It has no
// code of its own.
package deploy
