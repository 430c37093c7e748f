package meta

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ACLs (Kafka's CreateAcls, DescribeAcls, DeleteAcls) are replicated here
// so that every node authorizes every request the same way. The numbers
// are Kafka's wire codes (kmsg.ACLResourceType, ACLResourcePatternType,
// ACLOperation, ACLPermissionType); validation of which combinations make
// sense is the front end's (server/acl.go), apply only checks ranges.

// ACL is one access control entry.
type ACL struct {
	ResourceType int8
	ResourceName string
	PatternType  int8 // 3 literal, 4 prefixed
	Principal    string
	Host         string
	Operation    int8
	Permission   int8 // 2 deny, 3 allow
}

// Limits of ACLs.
const (
	ACLsMax         = 100000 // in the cluster
	ACLChangeMax    = 10000  // per command
	ACLNameLenMax   = 1024
	ACLPrincipalMax = 1024
	ACLHostLenMax   = 255
)

// CreateACLs adds ACLs (an ACL already present is kept once).
type CreateACLs struct{ ACLs []ACL }

// DeleteACLs removes exactly these ACLs (absent ones are ignored): the
// front end resolves Kafka's filters against a current view first.
type DeleteACLs struct{ ACLs []ACL }

func (CreateACLs) Kind() Kind { return KindCreateACLs }
func (DeleteACLs) Kind() Kind { return KindDeleteACLs }

func (c CreateACLs) encode(e *enc) { encodeACLs(e, c.ACLs) }
func (c DeleteACLs) encode(e *enc) { encodeACLs(e, c.ACLs) }

func encodeACLs(e *enc, acls []ACL) {
	e.uvar(uint64(len(acls)))
	for _, a := range acls {
		e.svar(int64(a.ResourceType))
		e.str(a.ResourceName)
		e.svar(int64(a.PatternType))
		e.str(a.Principal)
		e.str(a.Host)
		e.svar(int64(a.Operation))
		e.svar(int64(a.Permission))
	}
}

func decodeACLs(d *dec, max int) []ACL {
	n := d.count(max)
	var out []ACL
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, ACL{ResourceType: d.i8(), ResourceName: d.str(ACLNameLenMax), PatternType: d.i8(),
			Principal: d.str(ACLPrincipalMax), Host: d.str(ACLHostLenMax), Operation: d.i8(), Permission: d.i8()})
	}
	return out
}

// CompareACLs orders ACLs (the state keeps them sorted and unique).
func CompareACLs(a, b ACL) int {
	return cmp.Or(cmp.Compare(a.ResourceType, b.ResourceType), cmp.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.PatternType, b.PatternType), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Permission, b.Permission))
}

// checkACL returns what is out of range in a, or "".
func checkACL(a ACL) string {
	switch {
	case a.ResourceType < 2 || a.ResourceType > 7:
		return "resource type out of range"
	case a.PatternType != 3 && a.PatternType != 4:
		return "pattern type must be literal or prefixed"
	case a.Operation < 2 || a.Operation > 14:
		return "operation out of range"
	case a.Permission != 2 && a.Permission != 3:
		return "permission must be deny or allow"
	case a.Principal == "" || a.Host == "" || a.ResourceName == "":
		return "empty principal, host or resource name"
	}
	return ""
}

func (s *state) createACLs(c CreateACLs) (Result, bool) {
	if len(c.ACLs) > ACLChangeMax {
		return fail(kerr.InvalidRequest.Code, "%d ACLs beyond limit %d", len(c.ACLs), ACLChangeMax), false
	}
	next := slices.Clone(s.acls)
	for _, a := range c.ACLs {
		if msg := checkACL(a); msg != "" {
			return fail(kerr.InvalidRequest.Code, "ACL %+v: %s", a, msg), false
		}
		i, ok := slices.BinarySearchFunc(next, a, CompareACLs)
		if ok {
			continue
		}
		if len(next) >= ACLsMax {
			return fail(kerr.PolicyViolation.Code, "the cluster holds %d ACLs already", ACLsMax), false
		}
		next = slices.Insert(next, i, a)
	}
	if len(next) == len(s.acls) {
		return Result{}, false
	}
	s.acls = next
	return Result{}, true
}

func (s *state) deleteACLs(c DeleteACLs) (Result, bool) {
	if len(c.ACLs) > ACLChangeMax {
		return fail(kerr.InvalidRequest.Code, "%d ACLs beyond limit %d", len(c.ACLs), ACLChangeMax), false
	}
	next := slices.Clone(s.acls)
	for _, a := range c.ACLs {
		if i, ok := slices.BinarySearchFunc(next, a, CompareACLs); ok {
			next = slices.Delete(next, i, i+1)
		}
	}
	if len(next) == len(s.acls) {
		return Result{}, false
	}
	if len(next) == 0 {
		next = nil // as after a snapshot restore
	}
	s.acls = next
	return Result{}, true
}

// encodeSnapshotACLs writes the ACL section of a version 6 snapshot
// (sorted by CompareACLs).
func (s *state) encodeSnapshotACLs(e *enc) { encodeACLs(e, s.acls) }

func decodeSnapshotACLs(d *dec, s *state) {
	acls := decodeACLs(d, ACLsMax)
	for i, a := range acls {
		if msg := checkACL(a); msg != "" {
			d.fail("ACL %d: %s", i, msg)
			return
		}
		if i > 0 && CompareACLs(acls[i-1], a) >= 0 {
			d.fail("ACLs not sorted or duplicated at %d", i)
			return
		}
	}
	s.acls = acls
}
