package ha

import (
	"testing"
	"time"
)

// The layout of conntrackd 1.4's `-s` (FTFW over UDP).
const conntrackdStats = `cache internal:
current active connections:	      11
connections created:		      14	failed:	       0
connections updated:		      20	failed:	       0
connections destroyed:		       3	failed:	       0

cache external:
current active connections:	       9
connections created:		       9	failed:	       0
connections updated:		       4	failed:	       0
connections destroyed:		       0	failed:	       0

traffic processed:
                   0 Bytes                         0 Pckts

UDP traffic (active device=sync):
                4676 Bytes sent                 3172 Bytes recv
                  33 Pckts sent                   23 Pckts recv
                   1 Error send                    2 Error recv

message tracking:
                   5 Malformed msgs                    6 Lost msgs
`

func TestParseConntrackdStats(t *testing.T) {
	got, err := ParseConntrackdStats([]byte(conntrackdStats))
	if err != nil {
		t.Fatal(err)
	}
	want := SyncStats{InternalFlows: 11, ExternalFlows: 9, BytesSent: 4676, BytesRecv: 3172, MsgsSent: 33, MsgsRecv: 23,
		SendErrors: 1, RecvErrors: 2, MalformedMsgs: 5, LostMsgs: 6}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := ParseConntrackdStats([]byte("ERROR: cannot connect to socket\n")); err == nil {
		t.Fatal("an error message parsed as statistics")
	}
}

func TestParseStateFile(t *testing.T) {
	tr, err := ParseStateFile([]byte("MASTER 1764612345.5 150\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.State != StateMaster || tr.Priority != 150 || !tr.At.Equal(time.Unix(1764612345, 500_000_000)) {
		t.Fatalf("%+v", tr)
	}
	for _, bad := range []string{"", "MASTER 1 2 3", "LEADER 1.0 100", "BACKUP x 100", "FAULT 1.0 high"} {
		if _, err := ParseStateFile([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if tr, _ := ParseStateFile([]byte("STOP 1.0 100")); tr.State != StateStopped {
		t.Errorf("STOP: %s", tr.State)
	}
}
