// Package server will hold Chronik's Kafka wire front end (framing, kmsg
// decode/encode, one file per API key) and the process wiring. Only the
// binary's skeleton exists so far, in server/cmd/chronik.
package server
