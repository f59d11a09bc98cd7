//go:build kernel

package bgp

import (
	"os"
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

const envSpeaker = "FWD_BGP_TEST_SPEAKER"

func TestMain(m *testing.M) {
	// The supervisor re-executes this test binary as the speaker.
	if os.Getenv(envSpeaker) == "1" {
		os.Exit(SpeakerMain(os.Args[1:]))
	}
	testkit.Main(m)
}
