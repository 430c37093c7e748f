package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-1
//
// Behaviour:
//   - ClusterID (node.ClusterID, as in Metadata), ControllerID, and every
//     registered broker with its advertised host, port and rack.
//   - v1 EndpointType: 1 (brokers) is answered and echoed; 2
//     (controllers) is UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker
//     answers it; other values INVALID_REQUEST.
//   - ClusterAuthorizedOperations: when requested, the cluster operations
//     the principal may do (every one without an authorizer), -2147483648
//     otherwise.
//
// Version notes: v0 flexible from the start; v1 EndpointType (KIP-919);
// v2 (fenced brokers) not served.

const describeClusterAPIKey = 60

func init() {
	register(API{Key: describeClusterAPIKey, MinVersion: 0, MaxVersion: 1, Handler: handleDescribeCluster})
}

func handleDescribeCluster(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	resp.ClusterAuthorizedOperations = admOpsNotRequested
	if req.Version >= 1 {
		resp.EndpointType = req.EndpointType
		switch req.EndpointType {
		case 1:
		case 2:
			resp.ErrorCode = kerr.UnsupportedEndpointType.Code
			resp.ErrorMessage = admCodeMsg(resp.ErrorCode, "this is a broker; ask the controller endpoints of a controller")
			return resp, nil
		default:
			resp.ErrorCode = kerr.InvalidRequest.Code
			resp.ErrorMessage = admCodeMsg(resp.ErrorCode, "unknown endpoint type")
			return resp, nil
		}
	}
	cv := n.MetadataWith(ctx, []string{}, false)
	resp.ClusterID = n.ClusterID()
	resp.ControllerID = cv.ControllerID
	for _, b := range cv.Brokers {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.NodeID, b.Host, b.Port
		if b.Rack != "" {
			rack := b.Rack
			rb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = admOps(rc, kmsg.ACLResourceTypeCluster, clusterResource)
	}
	return resp, nil
}
