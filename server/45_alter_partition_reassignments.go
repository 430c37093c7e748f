package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartitionReassignments: v0
//
// Behaviour:
//   - Each partition's Replicas becomes its move target in the controller
//     (node.MovePartition); the partition's Raft leader then moves the
//     shard one replica at a time (core/node, "Partition moves"). The
//     response only says the target was recorded, as in Kafka.
//   - Replicas null cancels the move in progress
//     (NO_REASSIGNMENT_IN_PROGRESS without one).
//   - Per partition: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT
//     (a duplicate, an unregistered broker, a node that left the partition
//     before: chronik never re-adds it), INVALID_REPLICATION_FACTOR;
//     a partition listed twice: INVALID_REQUEST.
//   - Any broker accepts it (the controller is a Raft shard every node can
//     propose to); TimeoutMillis bounds each proposal (admTimeout).
//
// Version notes: v0 is flexible; v1 (AllowReplicationFactorChange) is not
// served.

const alterPartitionReassignmentsKey = 45

func init() {
	register(API{Key: alterPartitionReassignmentsKey, MinVersion: 0, MaxVersion: 0, Handler: handleAlterPartitionReassignments})
}

func handleAlterPartitionReassignments(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	if !rc.authorizedCluster(kmsg.ACLOperationAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	n := rc.Broker.Node
	ctx, cancel := context.WithTimeout(ctx, admTimeout(req.TimeoutMillis))
	defer cancel()
	type tp struct {
		topic string
		part  int32
	}
	count := map[tp]int{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			count[tp{t.Topic, p.Partition}]++
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition = p.Partition
			if count[tp{t.Topic, p.Partition}] > 1 {
				rp.ErrorCode = kerr.InvalidRequest.Code
				rp.ErrorMessage = admCodeMsg(rp.ErrorCode, "partition listed more than once in the request")
			} else {
				r := n.MovePartition(ctx, t.Topic, p.Partition, p.Replicas)
				rp.ErrorCode, rp.ErrorMessage = r.ErrorCode, admCodeMsg(r.ErrorCode, r.Message)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
