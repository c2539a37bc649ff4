// Package cloudformation holds tierq's CloudFormation template (tierq.yaml)
// and the one definition of its guardrail (guardrail.yaml), which the
// template and tierq's Bedrock simulator share.
//
// It is for: giving Go code the guardrail definition as shipped (the
// simulator builds its default guardrail from GuardrailYAML) without reading
// files at run time. deploy/cloudformation_test.go generates the template's
// tier-dependent parts (task role statements, tiers file, alarms and dashboard
// per model) from tierq.yaml.tmpl and checks the result.
//
// It is not for: deploying (aws cloudformation deploy does that, see
// README), or parsing CloudFormation in general. It imports nothing, so any
// package may import it.
package cloudformation

import _ "embed"

// GuardrailYAML is guardrail.yaml: an AWS::Bedrock::Guardrail resource
// (Type, Metadata, Properties) in CloudFormation's property names.
//
//go:embed guardrail.yaml
var GuardrailYAML []byte
