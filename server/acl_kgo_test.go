package server

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// The ACL matrix on a 3-node cluster with SASL PLAIN and --authorizer acl
// (admin a super user), seen through kgo and kadm: literal and prefixed
// allows, DENY over ALLOW ALL, implied DESCRIBE, groups, cluster
// operations, Metadata hiding what one may not describe, ACL changes
// applied on every node and kept across a restart.
func TestACLMatrix(t *testing.T) {
	c := startClusterWith(t, 3, nil, func(bc *BrokerConfig) {
		bc.Server.SASL = &SASLConfig{Mechanisms: []string{SASLPlain}, FailedAuthDelay: time.Millisecond}
		bc.Server.Authorizer = &AuthorizerConfig{SuperUsers: []string{"User:admin"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWait)
	defer cancel()
	var seeds []node.ScramSeed
	for _, u := range []string{"admin", "bob", "carol", "dave", "erin"} {
		seeds = append(seeds, node.ScramSeed{User: u, Mechanism: meta.ScramSHA512, Password: u + "-pw"})
	}
	if _, err := c.broker(1).Node.SeedScramCredentials(ctx, seeds); err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 3; id++ {
		eventually(t, testWait, func() bool {
			_, ok := c.broker(id).Node.ScramCredential("dave", meta.ScramSHA512)
			return ok
		}, "the credentials applied at node %d", id)
	}
	as := func(user string, opts ...kgo.Opt) *kgo.Client {
		return c.client(append([]kgo.Opt{kgo.SASL(plain.Auth{User: user, Pass: user + "-pw"}.AsMechanism()), kgo.RequestRetries(2)}, opts...)...)
	}
	admin := kadm.NewClient(as("admin"))
	for _, topic := range []string{"orders", "logs-app", "secret"} {
		if r, err := admin.CreateTopic(ctx, 1, 3, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("admin creates %s: %v %v", topic, err, r.Err)
		}
	}
	acls := []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("orders").Operations(kadm.OpWrite),
		kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("logs").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:bob").AllowHosts().Groups("g-bob").Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:carol").AllowHosts().Topics("*").Operations(kadm.OpAll),
		kadm.NewACLs().Allow("User:erin").AllowHosts().Topics("erin-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite),
		kadm.NewACLs().Deny("User:carol").DenyHosts().Topics("orders").Operations(kadm.OpRead),
	}
	for _, b := range acls {
		res, err := admin.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create ACL %+v: %v", r, r.Err)
			}
		}
	}

	produce := func(cl *kgo.Client, topic string) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	// consume reads one record of topic (as group, if given) or fails.
	consume := func(user, topic, group string) error {
		opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
		if group != "" {
			opts = append(opts, kgo.ConsumerGroup(group))
		}
		cl := as(user, opts...)
		ctx, cancel := context.WithTimeout(ctx, testWait)
		defer cancel()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if ferr != nil {
				return ferr
			}
			if fs.NumRecords() > 0 {
				return nil
			}
		}
		return ctx.Err()
	}
	bob := as("bob", kgo.DisableIdempotentWrite())
	want := func(what string, err, code error) {
		t.Helper()
		if code == nil && err != nil || code != nil && !errors.Is(err, code) {
			t.Errorf("%s: %v, want %v", what, err, code)
		}
	}
	want("bob writes orders (literal ALLOW WRITE)", produce(bob, "orders"), nil)
	want("bob writes logs-app (only READ)", produce(bob, "logs-app"), kerr.TopicAuthorizationFailed)
	// erin may WRITE erin-* but not CREATE: no auto-creation by a produce.
	want("erin writes a new topic", produce(as("erin", kgo.DisableIdempotentWrite(), kgo.RecordRetries(1)), "erin-new"), kerr.UnknownTopicOrPartition)
	want("admin writes logs-app", produce(as("admin"), "logs-app"), nil)
	want("admin writes secret", produce(as("admin"), "secret"), nil)
	want("bob reads logs-app in g-bob (prefixed ALLOW READ)", consume("bob", "logs-app", "g-bob"), nil)
	want("bob reads logs-app in g-other", consume("bob", "logs-app", "g-other"), kerr.GroupAuthorizationFailed)
	want("bob reads orders (only WRITE)", consume("bob", "orders", ""), kerr.TopicAuthorizationFailed)
	carol := as("carol", kgo.DisableIdempotentWrite())
	want("carol writes orders (ALLOW ALL on *)", produce(carol, "orders"), nil)
	want("carol reads orders (DENY READ beats ALLOW ALL)", consume("carol", "orders", ""), kerr.TopicAuthorizationFailed)
	want("carol reads secret", consume("carol", "secret", ""), nil)

	// Metadata shows what one may describe (implied by READ and WRITE).
	topicsOf := func(user string) []string {
		md, err := kadm.NewClient(as(user)).ListTopics(ctx)
		if err != nil {
			t.Fatalf("%s lists topics: %v", user, err)
		}
		return md.Names()
	}
	if got := topicsOf("bob"); !slices.Equal(got, []string{"logs-app", "orders"}) {
		t.Errorf("bob sees %v, want [logs-app orders]", got)
	}
	if got := topicsOf("dave"); len(got) != 0 {
		t.Errorf("dave (no ACLs) sees %v", got)
	}
	// dave: no topic creation, no idempotent producer id, no ACL admin.
	dadm := kadm.NewClient(as("dave"))
	if r, err := dadm.CreateTopic(ctx, 1, 1, nil, "daves"); err == nil && !errors.Is(r.Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("dave creates a topic: %v", r.Err)
	}
	want("dave writes orders", produce(as("dave"), "orders"), kerr.TopicAuthorizationFailed)
	ipid := kmsg.NewPtrInitProducerIDRequest()
	ipid.ProducerID, ipid.ProducerEpoch = -1, -1
	if r, err := ipid.RequestWith(ctx, as("dave")); err != nil || r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("dave's InitProducerId: %v %+v", err, r)
	}
	dd, err := dadm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().Deny().AllowHosts().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err == nil && (len(dd) == 0 || !errors.Is(dd[0].Err, kerr.ClusterAuthorizationFailed)) {
		t.Errorf("dave describes ACLs: %+v", dd)
	}
	// bob may not read, but an idempotent producer of bob's may start:
	// WRITE on some topic is enough.
	want("bob's idempotent producer", produce(as("bob"), "orders"), nil)

	// Describe and delete; the change reaches every node; a restart keeps
	// the ACLs.
	desc, err := admin.DescribeACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil || len(desc) != 1 || len(desc[0].Described) != 3 {
		t.Fatalf("describe bob's ACLs: %v %+v", err, desc)
	}
	if _, err := admin.DeleteACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("orders").Operations(kadm.OpWrite)); err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 3; id++ {
		eventually(t, testWait, func() bool {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[id]), kgo.SASL(plain.Auth{User: "bob", Pass: "bob-pw"}.AsMechanism()),
				kgo.DisableIdempotentWrite(), kgo.RequestRetries(0), kgo.MetadataMinAge(10*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			return errors.Is(produce(cl, "orders"), kerr.TopicAuthorizationFailed)
		}, "bob's WRITE removed at node %d", id)
	}
	c.stop(1)
	c.restart(1)
	c.waitBrokers(3)
	want("bob writes orders after the delete and a restart", produce(as("bob", kgo.DisableIdempotentWrite()), "orders"), kerr.TopicAuthorizationFailed)
	want("bob still reads logs-app after a restart", consume("bob", "logs-app", ""), nil)
}

func TestACLDecision(t *testing.T) {
	lit := func(name, principal, host string, op, perm int8) meta.ACL {
		return meta.ACL{ResourceType: 2, ResourceName: name, PatternType: 3, Principal: principal, Host: host, Operation: op, Permission: perm}
	}
	const read, write, all, describe, allow, deny = 3, 4, 2, 8, 3, 2
	acls := []meta.ACL{
		lit("t", "User:a", "*", read, allow),
		lit("t", "User:a", "10.0.0.9", read, deny),
		lit("*", "User:*", "*", describe, allow),
		{ResourceType: 2, ResourceName: "pre", PatternType: 4, Principal: "User:b", Host: "*", Operation: all, Permission: allow},
	}
	cases := []struct {
		principal, host, name string
		op                    int8
		want                  bool
	}{
		{"User:a", "1.2.3.4", "t", read, true},
		{"User:a", "10.0.0.9", "t", read, false}, // host-specific DENY
		{"User:a", "1.2.3.4", "t", write, false},
		{"User:z", "1.2.3.4", "anything", describe, true}, // wildcard principal and name
		{"User:b", "1.2.3.4", "prefix-match", write, true},
		{"User:b", "1.2.3.4", "pr", write, false},
		{"User:a", "1.2.3.4", "u", read, false},
	}
	for _, tc := range cases {
		got := aclAllows(acls, tc.principal, tc.host, kmsg.ACLOperation(tc.op), kmsg.ACLResourceTypeTopic, tc.name)
		if got != tc.want {
			t.Errorf("%s@%s %d on %q: %v, want %v", tc.principal, tc.host, tc.op, tc.name, got, tc.want)
		}
	}
}
