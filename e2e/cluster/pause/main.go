// Command pause is the sandbox (pause) process of the local worker node's pods: it holds the
// pod's namespaces, reaps the zombies it inherits as PID 1 and exits on SIGINT or SIGTERM.
// Built static (CGO_ENABLED=0) by e2e/cluster/build-binaries.sh; no registry is reachable, so
// the node imports it as an image it writes itself.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("swg-operator pause")
		return
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
