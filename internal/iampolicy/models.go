package iampolicy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tierq/tierq/tiering"
)

// The bedrock:InvokeModel statements, in the order they are written. Converse
// is authorised by bedrock:InvokeModel: "bedrock:InvokeModel – Required to
// carry out model invocation" for InvokeModel, InvokeModelWithResponseStream,
// Converse and ConverseStream
// (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-prereq.html).
const (
	sidFoundationModels = "InvokeTierFoundationModels"
	// A geographic profile (us., eu., apac., ...) needs the profile and the
	// foundation model in the source Region and in every destination Region
	// (https://docs.aws.amazon.com/bedrock/latest/userguide/geographic-cross-region-inference.html).
	// The destinations are AWS's to change, so the model is granted in any
	// Region (arn:aws:bedrock:*::foundation-model/MODEL, the form of
	// https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html),
	// but only through this profile: bedrock:InferenceProfileArn
	// ("To restrict user access such that they can invoke a foundation model
	// only through an inference profile, add a Condition", same page).
	sidProfiles       = "InvokeTierInferenceProfiles"
	sidProfileModels  = "InvokeModelsThroughInferenceProfiles"
	sidGlobalProfiles = "InvokeTierGlobalInferenceProfiles"
	// A global profile needs three grants: the profile, requested in the
	// source Region; the foundation model in the source Region, through the
	// profile; and the Region-less arn:aws:bedrock:::foundation-model/MODEL,
	// through the profile, with aws:RequestedRegion "unspecified"
	// (https://docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html,
	// "IAM policy requirements for global cross-Region inference").
	sidGlobalModelsInRegion  = "InvokeModelsThroughGlobalProfilesInRegion"
	sidGlobalModelsAnyRegion = "InvokeModelsThroughGlobalProfilesAnyRegion"
)

// invokeOrder is the order of the InvokeModel statements.
var invokeOrder = []string{sidFoundationModels, sidProfiles, sidProfileModels, sidGlobalProfiles,
	sidGlobalModelsInRegion, sidGlobalModelsAnyRegion}

// Prefixes of system-defined cross-Region inference profile IDs: geographic
// ones keep requests in their geography, global. may route to any commercial
// Region (https://docs.aws.amazon.com/bedrock/latest/userguide/cross-region-inference-support.html).
// An ID with another prefix is taken for a foundation model ID: granted as
// such, a new geography's profile fails with AccessDenied rather than being
// over-granted, and is added here.
var geoPrefixes = map[string]bool{"us": true, "us-gov": true, "eu": true, "apac": true, "jp": true, "au": true, "ca": true}

const globalPrefix = "global"

// grant is one resource of an InvokeModel statement with the conditions that
// resource needs besides the guardrail.
type grant struct {
	sid      string
	resource string
	// requestedRegion is the aws:RequestedRegion condition, "" for none.
	requestedRegion string
	// profileARN is the bedrock:InferenceProfileArn condition, "" for none.
	profileARN string
}

// modelUse is one model as the worker names it, the grants calling it takes,
// and the guardrails the tiers using it call it with.
type modelUse struct {
	grants []grant
	// guardrails are bedrock:GuardrailIdentifier values (guardrail ARN:version).
	guardrails map[string]bool
	// unguarded: a tier calls it without a guardrail (AllowUnguarded).
	unguarded bool
}

// plan is what the tiers need from Bedrock.
type plan struct {
	// models by their first grant's resource (the profile or model ARN), so
	// a model named by two tiers, or as one tier's model and another's
	// fallback, is granted once.
	models map[string]*modelUse
	// guardrails are the guardrail ARNs, for ApplyGuardrail.
	guardrails map[string]bool
}

// tierGrants works out every tier's models and guardrails, and every
// problem with them.
func (c Config) tierGrants() (*plan, []error) {
	pl := &plan{models: map[string]*modelUse{}, guardrails: map[string]bool{}}
	var errs []error
	for i, t := range c.Tiers.Tiers {
		where := fmt.Sprintf("tiers[%d] (%s)", i, t.Name)
		ids := []string{t.ModelID}
		fields := []string{"model_id"}
		if t.HasFallback() {
			ids = append(ids, t.FallbackModelID)
			fields = append(fields, "fallback_model_id")
		}
		guard, guardOK := "", true
		switch {
		case !t.Guardrail.Enabled() && !c.AllowUnguarded:
			guardOK = false
			errs = append(errs, fmt.Errorf("%s: no guardrail: the policy makes every call to %s carry the tier's guardrail "+
				"(bedrock:GuardrailIdentifier) and has none to require; set guardrail.id and guardrail.version on the tier, "+
				"or grant its models without one on purpose with --allow-unguarded", where, strings.Join(ids, " and ")))
		case t.Guardrail.Enabled():
			a, value, gerrs := c.guardrail(t.Guardrail)
			if len(gerrs) > 0 {
				guardOK = false
				for _, err := range gerrs {
					errs = append(errs, fmt.Errorf("%s.guardrail.%w", where, err))
				}
				break
			}
			pl.guardrails[a] = true
			guard = value
		}
		for j, id := range ids {
			grants, err := c.resolveModel(id)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", where, fields[j], err))
				continue
			}
			u := pl.models[grants[0].resource]
			if u == nil {
				u = &modelUse{grants: grants, guardrails: map[string]bool{}}
				pl.models[grants[0].resource] = u
			}
			switch {
			case !guardOK:
			case guard == "":
				u.unguarded = true
			default:
				u.guardrails[guard] = true
			}
		}
	}
	return pl, errs
}

// resolveModel returns the grants calling a tier's model_id or
// fallback_model_id takes: a foundation model or system-defined inference
// profile ID, or the ARN of either.
func (c Config) resolveModel(id string) ([]grant, error) {
	p := c.partition()
	if strings.HasPrefix(id, "arn:") {
		a, err := parseARN(id)
		if err != nil {
			return nil, err
		}
		if a.partition != p || a.service != "bedrock" {
			return nil, fmt.Errorf("%q: want an arn:%s:bedrock ARN (the job queue's partition)", id, p)
		}
		if !validRegion(a.region) {
			return nil, fmt.Errorf("%q: Region %q is not an AWS Region or a placeholder", id, a.region)
		}
		typ, name, _ := strings.Cut(a.resource, "/")
		switch typ {
		case "foundation-model":
			if a.account != "" || name == "" {
				return nil, fmt.Errorf("%q: a foundation-model ARN has no account and names a model (arn:%s:bedrock:REGION::foundation-model/MODEL)", id, p)
			}
			return []grant{{sid: sidFoundationModels, resource: id}}, nil
		case "inference-profile":
			geo, model, ok := splitProfile(name)
			if !ok {
				return nil, fmt.Errorf("%q: %q is not a cross-Region inference profile ID (us., eu., apac., global., ...)", id, name)
			}
			if !validAccount(a.account) {
				return nil, fmt.Errorf("%q: account %q is not 12 digits or a placeholder", id, a.account)
			}
			return profileGrants(a, geo, model), nil
		}
		// Application inference profiles, provisioned throughput, custom and
		// imported models, prompts: their ARNs do not say which foundation
		// models they call, and a guess would be wrong or too wide.
		return nil, fmt.Errorf("%q is a %s ARN, whose foundation models cannot be read from it: "+
			"use a model or inference profile ID, or grant it by hand", id, typ)
	}
	// $ starts an IAM policy variable (${aws:username}), which would widen
	// the grant as a wildcard does.
	if id == "" || strings.ContainsAny(id, "/*?$ ") {
		return nil, fmt.Errorf("%q is not a model or inference profile ID", id)
	}
	if geo, model, ok := splitProfile(id); ok {
		return profileGrants(arn{partition: p, service: "bedrock", region: c.Region, account: c.AccountID,
			resource: "inference-profile/" + id}, geo, model), nil
	}
	return []grant{{sid: sidFoundationModels, resource: foundationModel(p, c.Region, id)}}, nil
}

// splitProfile splits a system-defined inference profile ID into its
// geography and foundation model ID (us.amazon.nova-micro-v1:0 -> us,
// amazon.nova-micro-v1:0).
func splitProfile(id string) (geo, model string, ok bool) {
	geo, model, found := strings.Cut(id, ".")
	if !found || !strings.Contains(model, ".") || (!geoPrefixes[geo] && geo != globalPrefix) {
		return "", "", false
	}
	return geo, model, true
}

// profileGrants are the grants calling a system-defined inference profile
// takes (see the statement names above).
func profileGrants(profile arn, geo, model string) []grant {
	pa := profile.String()
	if geo == globalPrefix {
		return []grant{
			{sid: sidGlobalProfiles, resource: pa, requestedRegion: profile.region},
			{sid: sidGlobalModelsInRegion, resource: foundationModel(profile.partition, profile.region, model),
				requestedRegion: profile.region, profileARN: pa},
			{sid: sidGlobalModelsAnyRegion, resource: foundationModel(profile.partition, "", model),
				requestedRegion: "unspecified", profileARN: pa},
		}
	}
	return []grant{
		{sid: sidProfiles, resource: pa},
		{sid: sidProfileModels, resource: foundationModel(profile.partition, "*", model), profileARN: pa},
	}
}

func foundationModel(partition, region, model string) string {
	return arn{partition: partition, service: "bedrock", region: region, resource: "foundation-model/" + model}.String()
}

// guardrail returns a tier's guardrail ARN (for ApplyGuardrail) and its
// bedrock:GuardrailIdentifier value: the ARN, a colon and the version, as in
// "arn:aws:bedrock:us-east-1:123456789012:guardrail/guardrail-id:1"
// (https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions-id.html,
// Example 1). The key carries the ARN whether the request names the
// guardrail by ID or by ARN, which is what lets the worker send the ID.
func (c Config) guardrail(g tiering.GuardrailRef) (guardrailARN, value string, errs []error) {
	p := c.partition()
	if strings.HasPrefix(g.ID, "arn:") {
		a, perr := parseARN(g.ID)
		typ, name, _ := strings.Cut(a.resource, "/")
		switch {
		case perr != nil:
			errs = append(errs, fmt.Errorf("id: %w", perr))
		case a.partition != p || a.service != "bedrock" || typ != "guardrail" || !guardrailIDRE.MatchString(name):
			errs = append(errs, fmt.Errorf("id: %q is not a guardrail ARN (arn:%s:bedrock:REGION:ACCOUNT:guardrail/ID; the version goes in version)", g.ID, p))
		case !validRegion(a.region) || !validAccount(a.account):
			errs = append(errs, fmt.Errorf("id: %q: Region or account is neither real nor a placeholder", g.ID))
		}
		guardrailARN = g.ID
	} else {
		if !guardrailIDRE.MatchString(g.ID) {
			errs = append(errs, fmt.Errorf("id: %q is not a guardrail ID or ARN", g.ID))
		}
		guardrailARN = arn{partition: p, service: "bedrock", region: c.Region, account: c.AccountID, resource: "guardrail/" + g.ID}.String()
	}
	switch {
	case g.Version == "DRAFT":
		// Anyone allowed bedrock:UpdateGuardrail can change a DRAFT under a
		// running worker, so requiring it proves little; and the documented
		// condition value is the numbered form.
		errs = append(errs, errors.New("version: DRAFT can change under the worker; publish a version (CreateGuardrailVersion) and name its number"))
	case !guardrailVersionRE.MatchString(g.Version):
		errs = append(errs, fmt.Errorf("version: %q is not a guardrail version number", g.Version))
	}
	if len(errs) > 0 {
		return "", "", errs
	}
	return guardrailARN, guardrailARN + ":" + g.Version, nil
}
