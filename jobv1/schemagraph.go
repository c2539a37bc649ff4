package jobv1

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxInPlaceCost bounds the work a validator does at one place in an answer:
// the number of subschemas applied to the same value, counting each $ref
// as the schema it points to, each branch of allOf, anyOf and oneOf, not,
// if, then, else and dependentSchemas. A schema whose $defs chain each link
// to the next twice (anyOf of two $refs) doubles the work with every link:
// 3 levels deep and 1.4 KB long, 20 links took the validator 4.6 s, 40 would
// take years. Real schemas stay in the tens; 2,000 leaves room for large
// unions.
const maxInPlaceCost = 2000

// inPlace keywords apply their subschemas to the value the schema applies
// to. Keywords that descend (properties, items, ...) apply theirs to parts
// of the value, so a $ref through them is recursion over a finite answer,
// not a loop.
var (
	inPlaceLists = map[string]bool{"allOf": true, "anyOf": true, "oneOf": true}
	inPlaceOne   = map[string]bool{"not": true, "if": true, "then": true, "else": true}
	inPlaceMaps  = map[string]bool{"dependentSchemas": true}
	descendOne   = map[string]bool{"additionalProperties": true, "items": true, "contains": true, "propertyNames": true,
		"unevaluatedItems": true, "unevaluatedProperties": true, "contentSchema": true}
	descendLists = map[string]bool{"prefixItems": true}
	descendMaps  = map[string]bool{"properties": true, "patternProperties": true}
)

// draft2020 is the only $schema an extract schema may name, at any depth.
const draft2020 = "https://json-schema.org/draft/2020-12/schema"

// schemaGraph checks what compiling an extract schema does not: that no
// place in it makes the validator loop ($ref cycles through in-place
// keywords, at any depth, not only at the root) or do more than
// maxInPlaceCost subschemas' work for one value, and that no subschema
// names another draft. It runs in time linear in the schema: each
// subschema's cost is computed once.
type schemaGraph struct {
	root    any
	anchors map[string]string // anchor name to its subschema's pointer
	cost    map[string]int    // pointer to in-place cost, once known
	onStack map[string]bool
	seen    map[string]bool // subschemas already visited by the walk
}

// checkSchemaGraph returns a problem with an extract schema in the job's
// terms, or "".
func checkSchemaGraph(root any) string {
	g := &schemaGraph{root: root, anchors: map[string]string{}, cost: map[string]int{}, onStack: map[string]bool{}, seen: map[string]bool{}}
	g.findAnchors(root, "")
	// Every subschema that can apply to some value, each visited once: the
	// root, what it descends into, what its $refs point to, and $defs (a
	// definition no one refers to is still compiled).
	queue := []string{""}
	for len(queue) > 0 {
		ptr := queue[0]
		queue = queue[1:]
		if g.seen[ptr] {
			continue
		}
		g.seen[ptr] = true
		if _, problem := g.inPlace(ptr); problem != "" {
			return problem
		}
		children, problem := g.children(ptr)
		if problem != "" {
			return problem
		}
		queue = append(queue, children...)
	}
	return ""
}

func (g *schemaGraph) findAnchors(node any, ptr string) {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			if k == "enum" || k == "const" || k == "default" || k == "examples" {
				continue // data, not schemas
			}
			if s, ok := v.(string); ok && (k == "$anchor" || k == "$dynamicAnchor") {
				g.anchors[s] = ptr
				continue
			}
			g.findAnchors(v, ptr+"/"+escapePointer(k))
		}
	case []any:
		for i, v := range n {
			g.findAnchors(v, ptr+"/"+strconv.Itoa(i))
		}
	}
}

// schemaAt returns the subschema at ptr when it is an object.
func (g *schemaGraph) schemaAt(ptr string) (map[string]any, bool) {
	node, ok := g.at(ptr)
	if !ok {
		return nil, false
	}
	m, ok := node.(map[string]any)
	return m, ok
}

// inPlace computes the in-place cost of the subschema at ptr: itself, plus
// the in-place cost of every subschema it applies to the same value. A
// subschema met again while its own cost is being computed is a loop that
// consumes nothing of the answer: the validator would never end.
func (g *schemaGraph) inPlace(ptr string) (int, string) {
	if c, ok := g.cost[ptr]; ok {
		return c, ""
	}
	if g.onStack[ptr] {
		return 0, fmt.Sprintf(`%s refers to itself in a loop ($ref), so it can check no answer`, schemaPath(ptr))
	}
	m, ok := g.schemaAt(ptr)
	if !ok {
		return 1, "" // true, false, or a pointer to nothing (the compiler reports that)
	}
	g.onStack[ptr] = true
	defer delete(g.onStack, ptr)
	cost := 1
	for _, child := range g.inPlaceChildren(ptr, m) {
		c, problem := g.inPlace(child)
		if problem != "" {
			return 0, problem
		}
		if cost += c; cost > maxInPlaceCost {
			return 0, fmt.Sprintf(`%s applies more than %d subschemas to one value ($ref, allOf, anyOf, oneOf ...), which would make checking an answer too slow`,
				schemaPath(ptr), maxInPlaceCost)
		}
	}
	g.cost[ptr] = cost
	return cost, ""
}

// inPlaceChildren are the pointers of the subschemas m applies to the value
// it applies to.
func (g *schemaGraph) inPlaceChildren(ptr string, m map[string]any) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		switch {
		case k == "$ref" || k == "$dynamicRef":
			if s, ok := v.(string); ok {
				if target, ok := g.resolve(s); ok {
					out = append(out, target)
				}
			}
		case inPlaceOne[k]:
			out = append(out, ptr+"/"+k)
		case inPlaceLists[k]:
			out = append(out, listMembers(v, ptr+"/"+k)...)
		case inPlaceMaps[k]:
			out = append(out, mapMembers(v, ptr+"/"+k)...)
		}
	}
	return out
}

// children are every subschema of the one at ptr, in place or not, for the
// walk over the whole schema; and a problem with the subschema itself.
func (g *schemaGraph) children(ptr string) ([]string, string) {
	m, ok := g.schemaAt(ptr)
	if !ok {
		return nil, ""
	}
	if s, ok := m["$schema"].(string); ok && strings.TrimSuffix(s, "#") != draft2020 {
		return nil, fmt.Sprintf(`%s names %s; an extract schema is draft 2020-12 throughout`, schemaPath(ptr+"/$schema"), quoteTrunc(s))
	}
	out := g.inPlaceChildren(ptr, m)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		switch {
		case descendOne[k]:
			out = append(out, ptr+"/"+k)
		case descendLists[k]:
			out = append(out, listMembers(v, ptr+"/"+k)...)
		case descendMaps[k] || k == "$defs" || k == "definitions":
			out = append(out, mapMembers(v, ptr+"/"+escapePointer(k))...)
		}
	}
	return out, ""
}

func listMembers(v any, ptr string) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for i := range list {
		out = append(out, ptr+"/"+strconv.Itoa(i))
	}
	return out
}

func mapMembers(v any, ptr string) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, ptr+"/"+escapePointer(name))
	}
	return out
}

// resolve turns a local $ref ("#", "#/json/pointer", "#anchor") into a
// pointer; others are left to the compiler, which refuses them.
func (g *schemaGraph) resolve(ref string) (string, bool) {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return "", false
	}
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	if frag == "" || strings.HasPrefix(frag, "/") {
		return frag, true
	}
	ptr, ok := g.anchors[frag]
	return ptr, ok
}

// at returns the value at a JSON pointer into the schema.
func (g *schemaGraph) at(ptr string) (any, bool) {
	node := g.root
	if ptr == "" {
		return node, true
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch n := node.(type) {
		case map[string]any:
			v, ok := n[tok]
			if !ok {
				return nil, false
			}
			node = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			node = n[i]
		default:
			return nil, false
		}
	}
	return node, true
}

func escapePointer(s string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(s) }

// schemaPath names a place in the extract schema the way other messages do:
// "schema", "schema.$defs.a".
func schemaPath(ptr string) string {
	path := "schema"
	if ptr == "" {
		return `"schema"`
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		path = joinKey(path, strings.NewReplacer("~1", "/", "~0", "~").Replace(tok))
	}
	return subject(path, "")
}
