//go:build !linux

package proctest

import "os/exec"

// dieWithParent: only Linux kills a child with its parent.
func dieWithParent(*exec.Cmd) {}
