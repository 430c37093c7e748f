package node

import (
	"context"

	"github.com/chronik-go/chronik/core/meta"
)

// ACLs returns the ACLs as applied here (sorted by meta.CompareACLs; shared
// with the view: do not modify). The server's authorizer reads them per
// request, so a change applies on every node as soon as it applies there.
func (n *Node) ACLs() []meta.ACL { return n.view().ACLs }

// CreateACLs adds acls through the controller.
func (n *Node) CreateACLs(ctx context.Context, acls []meta.ACL) (int16, string) {
	return n.proposeCode(ctx, meta.CreateACLs{ACLs: acls})
}

// DeleteACLs removes exactly acls through the controller.
func (n *Node) DeleteACLs(ctx context.Context, acls []meta.ACL) (int16, string) {
	return n.proposeCode(ctx, meta.DeleteACLs{ACLs: acls})
}

// proposeCode proposes cmd and returns its outcome as a Kafka code and
// message.
func (n *Node) proposeCode(ctx context.Context, cmd meta.Command) (int16, string) {
	r, err := n.proposeMeta(ctx, cmd)
	if err != nil {
		return metaCode(ctx, err), err.Error()
	}
	return r.Code, r.Message
}
