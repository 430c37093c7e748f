package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-4
//
// Behaviour:
//   - Answers the Registry's table: what is advertised is what is dispatched.
//   - A request above v4 is answered by the connection (not this handler)
//     the way Kafka does (KIP-511): UNSUPPORTED_VERSION, the request's
//     correlation id, a v0 body listing only our ApiVersions range, so the
//     client retries at v4. See unsupportedAPIVersions.
//   - The response header is always v0, even for the flexible v3+ (conn.go).
//   - v3+: ClientSoftwareName/Version must match
//     [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? or the answer is
//     INVALID_REQUEST, as in Kafka.
//   - v3+: one feature, transaction.version, supported 0-2 and finalized
//     at 2 (FinalizedFeaturesEpoch 1; it never changes): transactions
//     follow KIP-890 part 2 (EndTxn v5, Produce v12 and TxnOffsetCommit v5
//     add implicitly). Clients (kgo, the Java client) use those versions
//     only when this feature is finalized at 2.
//
// Version notes: v1 ThrottleMillis; v3 flexible, client software name and
// version; v4 same as v3 (Kafka bumped it for KIP-511's error semantics). v5
// (KIP-1242 cluster/node id) is not served.

const apiVersionsKey = 18

// The transaction.version feature (KIP-1022): 2 is KIP-890 part 2.
const (
	transactionVersionFeature       = "transaction.version"
	transactionVersion        int16 = 2
)

func init() {
	register(API{Key: apiVersionsKey, MinVersion: 0, MaxVersion: 4, Handler: handleAPIVersions})
}

func handleAPIVersions(_ context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!validSoftwareNameVersion(req.ClientSoftwareName) || !validSoftwareNameVersion(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	resp.ApiKeys = rc.Registry.APIKeys()
	setFeatures(resp)
	return resp, nil
}

// setFeatures fills v3+'s supported and finalized features.
func setFeatures(resp *kmsg.ApiVersionsResponse) {
	if resp.Version >= 3 {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = transactionVersionFeature, 0, transactionVersion
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = transactionVersionFeature, transactionVersion, transactionVersion
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
		resp.FinalizedFeaturesEpoch = 1
	}
}

// unsupportedAPIVersions is the v0 answer to an ApiVersions request above
// api.MaxVersion.
func unsupportedAPIVersions(api API) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = api.Key, api.MinVersion, api.MaxVersion
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}

// validSoftwareNameVersion mirrors Kafka's pattern for the client software
// name and version: alphanumeric at both ends, dashes and dots inside.
func validSoftwareNameVersion(s string) bool {
	alnum := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	if len(s) == 0 || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
