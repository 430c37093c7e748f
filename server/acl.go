package server

import (
	"net"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// ACL authorization, as Kafka's StandardAuthorizer decides: with
// Config.Authorizer set, a request's principal (AnonymousPrincipal, the
// TLS subject or the SASL user) may do an operation on a resource when it
// is a super user, or when an ALLOW ACL matches and no DENY ACL does. An
// ACL matches when its resource type is the resource's, its pattern
// matches the name (LITERAL: equal, or the wildcard "*"; PREFIXED: a
// prefix of the name), its principal is the request's or "User:*", its
// host is the client's IP or "*", and its operation is the one asked or
// ALL. An ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE, and
// an ALLOW of ALTER_CONFIGS allows DESCRIBE_CONFIGS. No matching ACL:
// denied (Kafka's allow.everyone.if.no.acl.found=false). ACLs are read
// from the node's replicated view at each check.

// AuthorizerConfig turns ACL authorization on.
type AuthorizerConfig struct {
	// SuperUsers are principals allowed everything ("User:admin").
	SuperUsers []string
}

// clusterResource is the name of Kafka's one CLUSTER resource.
const clusterResource = "kafka-cluster"

// authorized reports whether rc's principal may do op on the resource.
// Always true without an authorizer (or in wire tests without a broker).
func (rc *RequestContext) authorized(op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if rc.authz == nil || rc.Broker == nil {
		return true
	}
	if slices.Contains(rc.authz.SuperUsers, rc.Principal) {
		return true
	}
	return aclAllows(rc.Broker.Node.ACLs(), rc.Principal, clientHost(rc.RemoteAddr), op, typ, name)
}

// authorizedCluster is authorized on the CLUSTER resource.
func (rc *RequestContext) authorizedCluster(op kmsg.ACLOperation) bool {
	return rc.authorized(op, kmsg.ACLResourceTypeCluster, clusterResource)
}

// topicDenied is TOPIC_AUTHORIZATION_FAILED when rc may not do op on
// topic, else 0.
func (rc *RequestContext) topicDenied(op kmsg.ACLOperation, topic string) int16 {
	if rc.authorized(op, kmsg.ACLResourceTypeTopic, topic) {
		return 0
	}
	return kerr.TopicAuthorizationFailed.Code
}

// groupDenied is GROUP_AUTHORIZATION_FAILED when rc may not do op on
// group, else 0.
func (rc *RequestContext) groupDenied(op kmsg.ACLOperation, group string) int16 {
	if rc.authorized(op, kmsg.ACLResourceTypeGroup, group) {
		return 0
	}
	return kerr.GroupAuthorizationFailed.Code
}

// mayWriteSomeTopic reports whether an ALLOW of WRITE (or ALL) on some
// topic applies to rc's principal and host: since Kafka 3.0 that is enough
// for an idempotent producer's InitProducerId.
func (rc *RequestContext) mayWriteSomeTopic() bool {
	if !rc.authorizerOn() || slices.Contains(rc.authz.SuperUsers, rc.Principal) {
		return true
	}
	host := clientHost(rc.RemoteAddr)
	for _, a := range rc.Broker.Node.ACLs() {
		op := kmsg.ACLOperation(a.Operation)
		if kmsg.ACLResourceType(a.ResourceType) == kmsg.ACLResourceTypeTopic && kmsg.ACLPermissionType(a.Permission) == kmsg.ACLPermissionTypeAllow &&
			(op == kmsg.ACLOperationWrite || op == kmsg.ACLOperationAll) &&
			(a.Principal == rc.Principal || a.Principal == "User:*") && (a.Host == host || a.Host == "*") &&
			rc.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, a.ResourceName) {
			return true
		}
	}
	return false
}

// mayCreateTopic reports whether rc may create topic (CREATE on the
// cluster or on the topic).
func (rc *RequestContext) mayCreateTopic(topic string) bool {
	return rc.authorizedCluster(kmsg.ACLOperationCreate) || rc.authorized(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, topic)
}

// authorizerOn reports whether requests are checked at all.
func (rc *RequestContext) authorizerOn() bool { return rc.authz != nil && rc.Broker != nil }

func clientHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// aclAllows decides one check against acls.
func aclAllows(acls []meta.ACL, principal, host string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	allowed := false
	for _, a := range acls {
		if !aclMatches(a, principal, host, typ, name) {
			continue
		}
		aop := kmsg.ACLOperation(a.Operation)
		switch kmsg.ACLPermissionType(a.Permission) {
		case kmsg.ACLPermissionTypeDeny:
			if aop == op || aop == kmsg.ACLOperationAll {
				return false
			}
		case kmsg.ACLPermissionTypeAllow:
			if aop == op || aop == kmsg.ACLOperationAll || implies(aop, op) {
				allowed = true
			}
		}
	}
	return allowed
}

// implies reports whether an ALLOW of granted also allows op.
func implies(granted, op kmsg.ACLOperation) bool {
	switch op {
	case kmsg.ACLOperationDescribe:
		switch granted {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}

func aclMatches(a meta.ACL, principal, host string, typ kmsg.ACLResourceType, name string) bool {
	if kmsg.ACLResourceType(a.ResourceType) != typ {
		return false
	}
	if a.Principal != principal && a.Principal != "User:*" {
		return false
	}
	if a.Host != host && a.Host != "*" {
		return false
	}
	switch kmsg.ACLResourcePatternType(a.PatternType) {
	case kmsg.ACLResourcePatternTypeLiteral:
		return a.ResourceName == name || a.ResourceName == "*"
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, a.ResourceName)
	}
	return false
}

// authorizedOps is the authorized-operations bit field Kafka returns
// (KIP-430) for a resource: bit i set when operation i is allowed.
func (rc *RequestContext) authorizedOps(typ kmsg.ACLResourceType, name string) int32 {
	var ops []kmsg.ACLOperation
	switch typ {
	case kmsg.ACLResourceTypeTopic:
		ops = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete,
			kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	case kmsg.ACLResourceTypeGroup:
		ops = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDelete, kmsg.ACLOperationDescribe}
	case kmsg.ACLResourceTypeCluster:
		ops = []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationClusterAction,
			kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite}
	}
	var bits int32
	for _, op := range ops {
		if rc.authorized(op, typ, name) {
			bits |= 1 << uint(op)
		}
	}
	return bits
}

// aclFilter is DescribeAcls' and DeleteAcls' filter.
type aclFilter struct {
	typ        kmsg.ACLResourceType
	name       *string
	pattern    kmsg.ACLResourcePatternType
	principal  *string
	host       *string
	op         kmsg.ACLOperation
	permission kmsg.ACLPermissionType
}

// matches reports whether a passes f, as Kafka's AclBindingFilter: ANY
// matches every value; MATCH (pattern) matches the ACLs that would apply
// to the named resource (literal equal or "*", prefixed prefix).
func (f aclFilter) matches(a meta.ACL) bool {
	if f.typ != kmsg.ACLResourceTypeAny && kmsg.ACLResourceType(a.ResourceType) != f.typ {
		return false
	}
	if f.principal != nil && *f.principal != a.Principal || f.host != nil && *f.host != a.Host {
		return false
	}
	if f.op != kmsg.ACLOperationAny && kmsg.ACLOperation(a.Operation) != f.op {
		return false
	}
	if f.permission != kmsg.ACLPermissionTypeAny && kmsg.ACLPermissionType(a.Permission) != f.permission {
		return false
	}
	apt := kmsg.ACLResourcePatternType(a.PatternType)
	switch f.pattern {
	case kmsg.ACLResourcePatternTypeAny:
		return f.name == nil || *f.name == a.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		if f.name == nil {
			return true
		}
		switch apt {
		case kmsg.ACLResourcePatternTypeLiteral:
			return a.ResourceName == *f.name || a.ResourceName == "*"
		case kmsg.ACLResourcePatternTypePrefixed:
			return strings.HasPrefix(*f.name, a.ResourceName)
		}
		return false
	default:
		return apt == f.pattern && (f.name == nil || *f.name == a.ResourceName)
	}
}

// validFilter reports whether f's enums are in range (INVALID_REQUEST
// otherwise, as Kafka).
func (f aclFilter) valid() bool {
	return f.typ >= kmsg.ACLResourceTypeAny && f.typ <= kmsg.ACLResourceTypeUser &&
		f.pattern >= kmsg.ACLResourcePatternTypeAny && f.pattern <= kmsg.ACLResourcePatternTypePrefixed &&
		f.op >= kmsg.ACLOperationAny && f.op <= kmsg.ACLOperationDescribeTokens &&
		f.permission >= kmsg.ACLPermissionTypeAny && f.permission <= kmsg.ACLPermissionTypeAllow
}
