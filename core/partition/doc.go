// Package partition is the replicated state machine of one Kafka partition:
// a dragonboat on-disk state machine over a plog.Log. Offsets are assigned
// when an entry is applied, so every replica assigns the same ones; the
// idempotent-producer state lives in the replicated state, so a retried
// batch gets its original offset after any leader change or restart.
package partition
