package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// resource is one row of core's resource table (core/src/resource.rs).
type resource struct {
	id           string // ResourceId variant
	group        string
	version      string
	plural       string
	kind         string
	namespaced   bool
	subresources []string
	view         string // View variant of a row of VIEWS; empty for a storage row
}

// served is what core serves, read from its own sources so that adding a resource to
// core/src/resource.rs and regenerating is the whole change.
type served struct {
	resources  []resource // in ResourceId order
	views      []resource // rows of VIEWS: another group-version over a resource's storage
	verbs      []string
	groups     [][2]string // besides the core group, in discovery order
	gitVersion string
}

// all is every served built-in resource: the storage rows, then the views.
func (s *served) all() []resource {
	return append(append([]resource{}, s.resources...), s.views...)
}

func (s *served) groupVersions() [][2]string {
	return append([][2]string{{"", "v1"}}, s.groups...)
}

func (s *served) hasVerb(verb string) bool {
	for _, v := range s.verbs {
		if v == verb {
			return true
		}
	}
	return false
}

var (
	lineComment = regexp.MustCompile(`(?m)//.*$`)
	enumBody    = regexp.MustCompile(`(?s)pub enum ResourceId \{(.*?)\}`)
	coreV1Call  = regexp.MustCompile(`[^\w]core_v1\(`)
	literal     = regexp.MustCompile(`ResourceType \{\s*id:`)
	verbsConst  = regexp.MustCompile(`(?s)pub const VERBS: &\[&str\] = &\[(.*?)\];`)
	groupsConst = regexp.MustCompile(`(?s)pub const GROUPS: &\[\(&str, &str\)\] = &\[(.*?)\];`)
	gitVersion  = regexp.MustCompile(`pub const GIT_VERSION: &str = "([^"]*)";`)
	rustString  = regexp.MustCompile(`"([^"\\]*)"`)
	viewVariant = regexp.MustCompile(`^Some\(View::(\w+)\)$`)
)

func readServed(root string) (*served, error) {
	raw, err := os.ReadFile(filepath.Join(root, "core/src/resource.rs"))
	if err != nil {
		return nil, err
	}
	src := lineComment.ReplaceAllString(string(raw), "")
	s := &served{}
	enum := enumBody.FindStringSubmatch(src)
	if enum == nil {
		return nil, fmt.Errorf("resource.rs: no ResourceId enum")
	}
	var ids []string
	for _, v := range strings.Split(enum[1], ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		name, _, _ := strings.Cut(v, "=")
		name = strings.TrimSpace(name)
		if strings.Contains(name, "(") {
			continue // Custom(u32): the CRD registry's resources, not table rows
		}
		ids = append(ids, name)
	}
	byID := map[string]resource{}
	add := func(r resource) error {
		if _, dup := byID[r.id]; dup {
			return fmt.Errorf("resource.rs: ResourceId::%s listed twice", r.id)
		}
		byID[r.id] = r
		return nil
	}
	for _, loc := range coreV1Call.FindAllStringIndex(src, -1) {
		if strings.HasSuffix(strings.TrimSpace(src[:loc[0]+1]), "fn") {
			continue // the helper's own definition
		}
		args, err := splitTopLevel(src[loc[1]:], ')')
		if err != nil {
			return nil, err
		}
		if len(args) != 8 {
			return nil, fmt.Errorf("resource.rs: core_v1 call with %d arguments", len(args))
		}
		r := resource{id: strings.TrimPrefix(args[0], "ResourceId::"), group: "", version: "v1",
			plural: unquote(args[1]), kind: unquote(args[3]), namespaced: args[4] == "true",
			subresources: stringList(args[7])}
		if err := add(r); err != nil {
			return nil, err
		}
	}
	for _, loc := range literal.FindAllStringIndex(src, -1) {
		start := loc[0] + strings.Index(src[loc[0]:], "{") + 1
		parts, err := splitTopLevel(src[start:], '}')
		if err != nil {
			return nil, err
		}
		fields := map[string]string{}
		for _, p := range parts {
			k, v, ok := strings.Cut(p, ":")
			if ok {
				fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		if strings.Contains(fields["id"], "(") {
			continue // the placeholder that stands for custom resources
		}
		r := resource{id: strings.TrimPrefix(fields["id"], "ResourceId::"), group: unquote(fields["group"]),
			version: unquote(fields["version"]), plural: unquote(fields["plural"]), kind: unquote(fields["kind"]),
			namespaced: fields["namespaced"] == "true", subresources: stringList(fields["subresources"])}
		if v := viewVariant.FindStringSubmatch(fields["view"]); v != nil {
			r.view = v[1]
			s.views = append(s.views, r)
			continue
		}
		if err := add(r); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		r, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("resource.rs: no table row for ResourceId::%s", id)
		}
		if r.plural == "" || r.kind == "" || r.version == "" {
			return nil, fmt.Errorf("resource.rs: incomplete row for ResourceId::%s", id)
		}
		s.resources = append(s.resources, r)
	}
	if len(byID) != len(ids) {
		return nil, fmt.Errorf("resource.rs: %d rows for %d ResourceId variants", len(byID), len(ids))
	}
	verbs := verbsConst.FindStringSubmatch(src)
	groups := groupsConst.FindStringSubmatch(src)
	if verbs == nil || groups == nil {
		return nil, fmt.Errorf("resource.rs: VERBS or GROUPS not found")
	}
	s.verbs = stringList(verbs[1])
	names := stringList(groups[1])
	if len(names)%2 != 0 {
		return nil, fmt.Errorf("resource.rs: GROUPS is not a list of pairs")
	}
	for i := 0; i < len(names); i += 2 {
		s.groups = append(s.groups, [2]string{names[i], names[i+1]})
	}
	disc, err := os.ReadFile(filepath.Join(root, "core/src/api/discovery.rs"))
	if err != nil {
		return nil, err
	}
	v := gitVersion.FindSubmatch(disc)
	if v == nil {
		return nil, fmt.Errorf("discovery.rs: GIT_VERSION not found")
	}
	s.gitVersion = string(v[1])
	return s, nil
}

// splitTopLevel splits the text up to the `end` that closes it at commas outside brackets.
func splitTopLevel(text string, end byte) ([]string, error) {
	var parts []string
	depth, start, inString := 0, 0, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '(' || c == '[' || c == '{':
			depth++
		case (c == ')' || c == ']' || c == '}') && depth > 0:
			depth--
		case c == end && depth == 0:
			if last := strings.TrimSpace(text[start:i]); last != "" {
				parts = append(parts, last)
			}
			return parts, nil
		case c == ',' && depth == 0:
			parts = append(parts, strings.TrimSpace(text[start:i]))
			start = i + 1
		}
	}
	return nil, fmt.Errorf("resource.rs: unclosed %q", end)
}

func unquote(s string) string {
	u, err := strconv.Unquote(strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return u
}

func stringList(s string) []string {
	var out []string
	for _, m := range rustString.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}
