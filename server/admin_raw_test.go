package server

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminRawVersions sends every advertised version of every admin API at
// exactly that version (rawRoundTrip) to a one-broker cluster and checks
// error codes and key fields. The table must cover exactly the advertised
// ranges.
func adminRawVersions(t *testing.T, c *testCluster) {
	ctx := adminCtx(t)
	addr := c.addrs[1]
	adm := c.admin()
	if r, err := adm.CreateTopics(ctx, 1, -1, nil, "raw"); err != nil || r["raw"].Err != nil {
		t.Fatalf("create raw: %+v %v", r, err)
	}
	prod := c.client(kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("raw"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 3; i++ {
		if err := prod.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	md := metadataEverywhere(t, c, 1, "raw")
	var rawID [16]byte
	var epoch int32
	for _, tp := range md.Topics {
		if *tp.Topic == "raw" {
			rawID, epoch = tp.TopicID, tp.Partitions[0].LeaderEpoch
		}
	}
	send := func(v int16, req kmsg.Request) kmsg.Response {
		t.Helper()
		req.SetVersion(v)
		return rawRoundTrip(t, addr, req)
	}
	check := func(v int16, what string, got int16, want *kerr.Error) {
		t.Helper()
		w := int16(0)
		if want != nil {
			w = want.Code
		}
		if got != w {
			t.Fatalf("v%d %s: code %d (%v), want %d", v, what, got, kerr.ErrorForCode(got), w)
		}
	}
	mdTopic := func(name string) kmsg.MetadataRequestTopic {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = strp(name)
		return rt
	}
	createdPartitions := int32(1)

	table := map[int16]func(v int16){
		metadataKey: func(v int16) {
			// All topics: null at v1+, an empty array at v0.
			req := kmsg.NewPtrMetadataRequest()
			if v == 0 {
				req.Topics = []kmsg.MetadataRequestTopic{}
			}
			resp := send(v, req).(*kmsg.MetadataResponse)
			found := false
			for _, tp := range resp.Topics {
				if *tp.Topic == "raw" {
					found = true
					if len(tp.Partitions) == 0 || tp.Partitions[0].Leader != 1 || (v >= 7 && tp.Partitions[0].LeaderEpoch != epoch) {
						t.Fatalf("v%d raw: %+v", v, tp)
					}
					if v >= 10 && tp.TopicID != rawID {
						t.Fatalf("v%d topic id", v)
					}
					if v >= 8 && tp.AuthorizedOperations != -2147483648 {
						t.Fatalf("v%d authorized operations %d", v, tp.AuthorizedOperations)
					}
				}
			}
			if !found || len(resp.Brokers) != 1 || resp.Brokers[0].Host != "127.0.0.1" {
				t.Fatalf("v%d all topics: %+v", v, resp)
			}
			if v >= 1 && resp.ControllerID != 1 {
				t.Fatalf("v%d controller %d", v, resp.ControllerID)
			}
			if v >= 2 && (resp.ClusterID == nil || *resp.ClusterID == "") {
				t.Fatalf("v%d cluster id", v)
			}
			if v >= 1 {
				// An empty array at v1+ means no topics.
				req = kmsg.NewPtrMetadataRequest()
				req.Topics = []kmsg.MetadataRequestTopic{}
				if resp := send(v, req).(*kmsg.MetadataResponse); len(resp.Topics) != 0 {
					t.Fatalf("v%d empty topic list answered %d topics", v, len(resp.Topics))
				}
			}
			// Named topics: known, invalid, missing (auto-created below v4;
			// not at v4+ with AllowAutoTopicCreation false).
			missing := "auto-v" + strconv.Itoa(int(v))
			req = kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{mdTopic("raw"), mdTopic("bad name!"), mdTopic(missing)}
			req.IncludeTopicAuthorizedOperations = true
			resp = send(v, req).(*kmsg.MetadataResponse)
			if len(resp.Topics) != 3 || *resp.Topics[0].Topic != "raw" {
				t.Fatalf("v%d named: %+v", v, resp.Topics)
			}
			check(v, "raw", resp.Topics[0].ErrorCode, nil)
			if v >= 8 && resp.Topics[0].AuthorizedOperations == -2147483648 {
				t.Fatalf("v%d authorized operations not filled when requested", v)
			}
			check(v, "invalid name", resp.Topics[1].ErrorCode, kerr.InvalidTopicException)
			if v < 4 {
				check(v, "auto-created", resp.Topics[2].ErrorCode, nil)
			} else {
				check(v, "not auto-created", resp.Topics[2].ErrorCode, kerr.UnknownTopicOrPartition)
				req.AllowAutoTopicCreation = true
				req.Topics = []kmsg.MetadataRequestTopic{mdTopic(missing)}
				resp = send(v, req).(*kmsg.MetadataResponse)
				check(v, "auto-created when allowed", resp.Topics[0].ErrorCode, nil)
			}
			if v >= 12 {
				byID := kmsg.NewMetadataRequestTopic()
				byID.TopicID = rawID
				unknown := kmsg.NewMetadataRequestTopic()
				unknown.TopicID = [16]byte{9}
				req = kmsg.NewPtrMetadataRequest()
				req.Topics = []kmsg.MetadataRequestTopic{byID, unknown}
				resp = send(v, req).(*kmsg.MetadataResponse)
				if resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "raw" || resp.Topics[0].TopicID != rawID {
					t.Fatalf("v%d by id: %+v", v, resp.Topics[0])
				}
				check(v, "unknown id", resp.Topics[1].ErrorCode, kerr.UnknownTopicID)
			}
		},
		createTopicsKey: func(v int16) {
			name := "ct-v" + strconv.Itoa(int(v))
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 10000
			t1 := kmsg.NewCreateTopicsRequestTopic()
			t1.Topic, t1.NumPartitions, t1.ReplicationFactor = name, 2, -1
			t1.ReplicaAssignment, t1.Configs = nil, nil // null arrays are legal
			t2 := kmsg.NewCreateTopicsRequestTopic()
			t2.Topic, t2.NumPartitions, t2.ReplicationFactor = name+"-manual", -1, -1
			t2.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}
			t3 := kmsg.NewCreateTopicsRequestTopic()
			t3.Topic, t3.NumPartitions, t3.ReplicationFactor = name+"-cfg", 1, 1
			t3.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: nil}}
			req.Topics = []kmsg.CreateTopicsRequestTopic{t1, t2, t3}
			resp := send(v, req).(*kmsg.CreateTopicsResponse)
			if len(resp.Topics) != 3 {
				t.Fatalf("v%d: %+v", v, resp)
			}
			check(v, "create", resp.Topics[0].ErrorCode, nil)
			check(v, "manual assignment", resp.Topics[1].ErrorCode, kerr.InvalidRequest)
			check(v, "null config value", resp.Topics[2].ErrorCode, kerr.InvalidConfig)
			if resp.Topics[1].ErrorMessage == nil {
				t.Fatalf("v%d: no error message", v)
			}
			r := resp.Topics[0]
			if v >= 5 && (r.NumPartitions != 2 || r.ReplicationFactor != 1 || len(r.Configs) != 10) {
				t.Fatalf("v%d: %+v", v, r)
			}
			if v >= 7 && r.TopicID == [16]byte{} {
				t.Fatalf("v%d: no topic id", v)
			}
			// Validate-only on the same name now: already exists.
			req.ValidateOnly = true
			req.Topics = req.Topics[:1]
			resp = send(v, req).(*kmsg.CreateTopicsResponse)
			check(v, "validate existing", resp.Topics[0].ErrorCode, kerr.TopicAlreadyExists)
		},
		deleteTopicsKey: func(v int16) {
			name := "ct-v" + strconv.Itoa(int(v+1)) // created by the CreateTopics rows (v2..7)
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TimeoutMillis = 10000
			if v >= 6 {
				var id [16]byte
				for _, tp := range metadataEverywhere(t, c, 1, name).Topics {
					if *tp.Topic == name {
						id = tp.TopicID
					}
				}
				byID := kmsg.NewDeleteTopicsRequestTopic()
				byID.TopicID = id
				unknown := kmsg.NewDeleteTopicsRequestTopic()
				unknown.TopicID = [16]byte{7}
				req.Topics = []kmsg.DeleteTopicsRequestTopic{byID, unknown}
				resp := send(v, req).(*kmsg.DeleteTopicsResponse)
				check(v, "delete by id", resp.Topics[0].ErrorCode, nil)
				if resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != name || resp.Topics[0].TopicID != id {
					t.Fatalf("v%d: %+v", v, resp.Topics[0])
				}
				check(v, "unknown id", resp.Topics[1].ErrorCode, kerr.UnknownTopicID)
				return
			}
			req.TopicNames = []string{name, "never-existed"}
			resp := send(v, req).(*kmsg.DeleteTopicsResponse)
			check(v, "delete", resp.Topics[0].ErrorCode, nil)
			check(v, "delete unknown", resp.Topics[1].ErrorCode, kerr.UnknownTopicOrPartition)
			if v >= 5 && resp.Topics[1].ErrorMessage == nil {
				t.Fatalf("v%d: no error message", v)
			}
		},
		createPartitionsKey: func(v int16) {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.TimeoutMillis = 10000
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = "raw", createdPartitions+1
			req.Topics = []kmsg.CreatePartitionsRequestTopic{rt}
			req.ValidateOnly = true
			resp := send(v, req).(*kmsg.CreatePartitionsResponse)
			check(v, "validate", resp.Topics[0].ErrorCode, nil)
			req.ValidateOnly = false
			resp = send(v, req).(*kmsg.CreatePartitionsResponse)
			check(v, "create partitions", resp.Topics[0].ErrorCode, nil)
			createdPartitions++
			resp = send(v, req).(*kmsg.CreatePartitionsResponse)
			check(v, "same count", resp.Topics[0].ErrorCode, kerr.InvalidPartitions)
		},
		deleteRecordsKey: func(v int16) {
			req := kmsg.NewPtrDeleteRecordsRequest()
			req.TimeoutMillis = 10000
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = "raw"
			rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: int64(v)}, {Partition: 99, Offset: 0}}
			req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
			resp := send(v, req).(*kmsg.DeleteRecordsResponse)
			p := resp.Topics[0].Partitions
			check(v, "delete records", p[0].ErrorCode, nil)
			if p[0].LowWatermark != int64(v) {
				t.Fatalf("v%d low watermark %d", v, p[0].LowWatermark)
			}
			check(v, "unknown partition", p[1].ErrorCode, kerr.UnknownTopicOrPartition)
		},
		describeConfigsKey: func(v int16) {
			req := kmsg.NewPtrDescribeConfigsRequest()
			tr := kmsg.NewDescribeConfigsRequestResource()
			tr.ResourceType, tr.ResourceName = kmsg.ConfigResourceTypeTopic, "raw"
			fr := tr
			fr.ConfigNames = []string{"retention.ms", "no.such"}
			br := kmsg.NewDescribeConfigsRequestResource()
			br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
			ur := tr
			ur.ResourceName = "missing"
			req.Resources = []kmsg.DescribeConfigsRequestResource{tr, fr, br, ur}
			req.IncludeSynonyms, req.IncludeDocumentation = true, true
			resp := send(v, req).(*kmsg.DescribeConfigsResponse)
			rs := resp.Resources
			check(v, "topic", rs[0].ErrorCode, nil)
			if len(rs[0].Configs) != 10 || len(rs[1].Configs) != 1 || rs[1].Configs[0].Name != "retention.ms" {
				t.Fatalf("v%d configs: %+v / %+v", v, rs[0].Configs, rs[1].Configs)
			}
			cf := rs[1].Configs[0]
			if cf.Value == nil || cf.Source != kmsg.ConfigSourceDefaultConfig || (v >= 3 && (cf.ConfigType != kmsg.ConfigTypeLong || cf.Documentation != nil)) {
				t.Fatalf("v%d config: %+v", v, cf)
			}
			check(v, "broker", rs[2].ErrorCode, nil)
			check(v, "missing topic", rs[3].ErrorCode, kerr.UnknownTopicOrPartition)
		},
		incrementalAlterConfigsKey: func(v int16) {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			r1 := kmsg.NewIncrementalAlterConfigsRequestResource()
			r1.ResourceType, r1.ResourceName = kmsg.ConfigResourceTypeTopic, "raw"
			r1.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: strp(strconv.Itoa(100000 + int(v)))}}
			r2 := kmsg.NewIncrementalAlterConfigsRequestResource()
			r2.ResourceType, r2.ResourceName = kmsg.ConfigResourceTypeTopic, "auto-v0"
			r2.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: strp("delete")}}
			req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{r1, r2}
			resp := send(v, req).(*kmsg.IncrementalAlterConfigsResponse)
			check(v, "set", resp.Resources[0].ErrorCode, nil)
			check(v, "append", resp.Resources[1].ErrorCode, kerr.InvalidRequest)
			dreq := kmsg.NewPtrDescribeConfigsRequest()
			dr := kmsg.NewDescribeConfigsRequestResource()
			dr.ResourceType, dr.ResourceName, dr.ConfigNames = kmsg.ConfigResourceTypeTopic, "raw", []string{"retention.ms"}
			dreq.Resources = []kmsg.DescribeConfigsRequestResource{dr}
			dresp := send(4, dreq).(*kmsg.DescribeConfigsResponse)
			if got := *dresp.Resources[0].Configs[0].Value; got != strconv.Itoa(100000+int(v)) {
				t.Fatalf("v%d: retention.ms %s", v, got)
			}
		},
		describeClusterAPIKey: func(v int16) {
			req := kmsg.NewPtrDescribeClusterRequest()
			resp := send(v, req).(*kmsg.DescribeClusterResponse)
			check(v, "describe cluster", resp.ErrorCode, nil)
			if resp.ClusterID != *md.ClusterID || resp.ControllerID != 1 || len(resp.Brokers) != 1 || resp.Brokers[0].Host != "127.0.0.1" {
				t.Fatalf("v%d: %+v", v, resp)
			}
			if v >= 1 {
				if resp.EndpointType != 1 {
					t.Fatalf("v%d endpoint type %d", v, resp.EndpointType)
				}
				req.EndpointType = 2
				resp = send(v, req).(*kmsg.DescribeClusterResponse)
				check(v, "controllers endpoint", resp.ErrorCode, kerr.UnsupportedEndpointType)
			}
		},
		listOffsetsKey: func(v int16) {
			// raw/0 has offsets 0..2; DeleteRecords rows moved its start.
			lso := kmsg.NewPtrListOffsetsRequest()
			lso.ReplicaID = -1
			part := func(ts int64, cur int32) kmsg.ListOffsetsRequestTopicPartition {
				p := kmsg.NewListOffsetsRequestTopicPartition()
				p.Partition, p.Timestamp, p.CurrentLeaderEpoch = 0, ts, cur
				return p
			}
			ask := func(ts int64, cur int32) kmsg.ListOffsetsResponseTopicPartition {
				t.Helper()
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = "raw"
				rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{part(ts, cur)}
				lso.Topics = []kmsg.ListOffsetsRequestTopic{rt}
				lso.IsolationLevel = 1
				return send(v, lso).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
			}
			p := ask(-1, -1)
			check(v, "latest", p.ErrorCode, nil)
			if p.Offset != 3 || (v >= 4 && p.LeaderEpoch != epoch) {
				t.Fatalf("v%d latest: %+v", v, p)
			}
			if p := ask(-2, -1); p.ErrorCode != 0 || p.Offset != 2 {
				t.Fatalf("v%d earliest: %+v", v, p)
			}
			if p := ask(0, -1); p.ErrorCode != 0 || p.Offset != 2 {
				t.Fatalf("v%d by timestamp: %+v", v, p)
			}
			if v >= 4 {
				check(v, "newer epoch", ask(-1, epoch+1).ErrorCode, kerr.UnknownLeaderEpoch)
				check(v, "older epoch", ask(-1, epoch-1).ErrorCode, kerr.FencedLeaderEpoch)
				check(v, "current epoch", ask(-1, epoch).ErrorCode, nil)
			}
			if v < 7 {
				check(v, "-3 before v7", ask(-3, -1).ErrorCode, kerr.UnsupportedVersion)
			} else if p := ask(-3, -1); p.ErrorCode != 0 || p.Offset < 2 || p.Timestamp <= 0 {
				t.Fatalf("v%d max timestamp: %+v", v, p)
			}
			if v < 8 {
				check(v, "-4 before v8", ask(-4, -1).ErrorCode, kerr.UnsupportedVersion)
			} else if p := ask(-4, -1); p.ErrorCode != 0 || p.Offset != 2 {
				t.Fatalf("v%d earliest local: %+v", v, p)
			}
			check(v, "-7", ask(-7, -1).ErrorCode, kerr.UnsupportedVersion)
			// A partition listed twice.
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "raw"
			rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{part(-1, -1), part(-2, -1)}
			lso.Topics = []kmsg.ListOffsetsRequestTopic{rt}
			resp := send(v, lso).(*kmsg.ListOffsetsResponse)
			check(v, "duplicate", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequest)
		},
		offsetForLeaderEpochKey: func(v int16) {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "raw"
			mk := func(cur, le int32) kmsg.OffsetForLeaderEpochRequestTopicPartition {
				p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
				p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = 0, cur, le
				return p
			}
			rt.Partitions = []kmsg.OffsetForLeaderEpochRequestTopicPartition{mk(epoch, epoch), mk(epoch-1, epoch), mk(epoch+1, epoch), mk(-1, epoch+1)}
			req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{rt}
			ps := send(v, req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions
			check(v, "current", ps[0].ErrorCode, nil)
			if ps[0].EndOffset != 3 || ps[0].LeaderEpoch != epoch {
				t.Fatalf("v%d: %+v", v, ps[0])
			}
			check(v, "fenced", ps[1].ErrorCode, kerr.FencedLeaderEpoch)
			check(v, "unknown epoch", ps[2].ErrorCode, kerr.UnknownLeaderEpoch)
			if ps[3].ErrorCode != 0 || ps[3].EndOffset != -1 || ps[3].LeaderEpoch != -1 {
				t.Fatalf("v%d above current: %+v", v, ps[3])
			}
		},
	}
	// Order matters: CreateTopics before DeleteTopics, DeleteRecords before
	// ListOffsets.
	order := []int16{metadataKey, createTopicsKey, deleteTopicsKey, createPartitionsKey, deleteRecordsKey,
		describeConfigsKey, incrementalAlterConfigsKey, describeClusterAPIKey, listOffsetsKey, offsetForLeaderEpochKey}
	reg := DefaultRegistry()
	for _, key := range order {
		api, ok := reg.Lookup(key)
		if !ok {
			t.Fatalf("key %d not registered", key)
		}
		for v := api.MinVersion; v <= api.MaxVersion; v++ {
			table[key](v)
		}
	}
}
