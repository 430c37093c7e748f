package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// AlterUserScramCredentials: v0
//
// Behaviour:
//   - Upsertions carry the salted password (never the password); the node
//     derives SCRAM's StoredKey and ServerKey and replicates only those
//     through the controller. Deletions remove one mechanism's credential.
//   - One result per user, in order of first appearance (deletions, then
//     upsertions), each user's changes all or nothing, as Kafka:
//     UNSUPPORTED_SASL_MECHANISM for a mechanism other than SCRAM-SHA-256
//     or -512; UNACCEPTABLE_CREDENTIAL for an empty user name, iterations
//     outside [4096, 16384], an empty salt or a salted password of the
//     wrong length; DUPLICATE_RESOURCE for a (user, mechanism) named twice;
//     RESOURCE_NOT_FOUND for the deletion of a credential that does not
//     exist.
//
// Version notes: v0 flexible.

const alterUserScramCredentialsKey = 51

func init() {
	register(API{Key: alterUserScramCredentialsKey, MinVersion: 0, MaxVersion: 0, Handler: handleAlterUserScramCredentials})
}

func handleAlterUserScramCredentials(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	var users []string
	codes := map[string]int16{}
	note := func(user string, code int16) {
		if _, seen := codes[user]; !seen {
			users = append(users, user)
			codes[user] = 0
		}
		if codes[user] == 0 {
			codes[user] = code
		}
	}
	type um struct {
		user string
		mech int8
	}
	seen := map[um]int{}
	for _, d := range req.Deletions {
		seen[um{d.Name, d.Mechanism}]++
	}
	for _, u := range req.Upsertions {
		seen[um{u.Name, u.Mechanism}]++
	}
	check := func(user string, mech int8) int16 {
		switch {
		case user == "":
			return kerr.UnacceptableCredential.Code
		case meta.ScramMechanism(mech) != meta.ScramSHA256 && meta.ScramMechanism(mech) != meta.ScramSHA512:
			return kerr.UnsupportedSaslMechanism.Code
		case seen[um{user, mech}] > 1:
			return kerr.DuplicateResource.Code
		}
		return 0
	}
	if !rc.authorizedCluster(kmsg.ACLOperationAlter) {
		check = func(string, int8) int16 { return kerr.ClusterAuthorizationFailed.Code }
	}
	for _, d := range req.Deletions {
		note(d.Name, check(d.Name, d.Mechanism))
	}
	for _, u := range req.Upsertions {
		code := check(u.Name, u.Mechanism)
		if code == 0 && (u.Iterations < meta.ScramIterationsMin || u.Iterations > meta.ScramIterationsMax ||
			len(u.Salt) == 0 || len(u.Salt) > meta.ScramSaltLenMax || len(u.SaltedPassword) != meta.ScramMechanism(u.Mechanism).KeyBytes()) {
			code = kerr.UnacceptableCredential.Code
		}
		note(u.Name, code)
	}
	var dels []meta.ScramDeletion
	var ups []node.ScramUpsert
	for _, d := range req.Deletions {
		if codes[d.Name] == 0 {
			dels = append(dels, meta.ScramDeletion{User: d.Name, Mechanism: meta.ScramMechanism(d.Mechanism)})
		}
	}
	for _, u := range req.Upsertions {
		if codes[u.Name] == 0 {
			ups = append(ups, node.ScramUpsert{User: u.Name, Mechanism: meta.ScramMechanism(u.Mechanism), Iterations: u.Iterations, Salt: u.Salt, SaltedPassword: u.SaltedPassword})
		}
	}
	if len(dels)+len(ups) > 0 {
		applied, code, err := rc.Broker.Node.AlterScramCredentials(ctx, ups, dels)
		if err != nil {
			for _, u := range users {
				if codes[u] == 0 {
					codes[u] = code
				}
			}
		}
		for _, a := range applied {
			codes[a.User] = a.Code
		}
	}
	for _, u := range users {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User, r.ErrorCode, r.ErrorMessage = u, codes[u], admCodeMsg(codes[u], "")
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
