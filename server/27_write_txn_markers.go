package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WriteTxnMarkers: v0-1
//
// Behaviour:
//   - CLUSTER_ACTION on the cluster, else CLUSTER_AUTHORIZATION_FAILED on
//     every partition (Kafka: an inter-broker API).
//   - Each marker is written to each named partition this broker leads
//     (NOT_LEADER_OR_FOLLOWER elsewhere, UNKNOWN_TOPIC_OR_PARTITION for
//     unknown ones) as a partition Raft entry (partition.Marker): a COMMIT
//     or ABORT control batch that closes the producer's open transaction
//     there. A marker older than the producer's epoch on the partition is
//     INVALID_PRODUCER_EPOCH. Chronik's own coordinator does not send this
//     request (partition leaders pull decided transactions from the
//     controller shard, core/node/txn.go); it is served for tools and
//     tests, and changes no coordinator state.
//
// Version notes: v1 flexible. v2 (TransactionVersion, KIP-890) is not
// served.

const writeTxnMarkersKey = 27

func init() {
	register(API{Key: writeTxnMarkersKey, MinVersion: 0, MaxVersion: 1, Handler: handleWriteTxnMarkers})
}

func handleWriteTxnMarkers(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.WriteTxnMarkersRequest)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	allowed := rc.authorizedCluster(kmsg.ACLOperationClusterAction)
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				switch {
				case !allowed:
					rp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
				case m.ProducerID < 0 || m.ProducerEpoch < 0:
					rp.ErrorCode = kerr.InvalidRequest.Code
				default:
					rp.ErrorCode = rc.Broker.Node.WriteTxnMarker(ctx, t.Topic, p, m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp, nil
}
