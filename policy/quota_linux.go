package policy

import "github.com/google/nftables/expr"

func (s CtCount) exprs() []expr.Any {
	return []expr.Any{&expr.Connlimit{Count: s.Over, Flags: expr.NFT_CONNLIMIT_F_INV}}
}
