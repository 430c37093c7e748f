package group

// Failpoints (github.com/pingcap/failpoint; compiled in only by
// `make failpoint-enable`, no-ops otherwise). Their full names are
// "github.com/chronik-go/chronik/core/group/<name>":
//
//	validateCommit  ValidateCommit answers the Kafka error code given as the
//	                term's value, e.g. "1*return(16)" (NOT_COORDINATOR: the
//	                coordinator moved) or "return(14)" (loading); the commit
//	                is not made and the member's session is not refreshed.
//	                Clients retry these codes.
