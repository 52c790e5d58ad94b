// SPDX-License-Identifier: MIT
// fasthttp peer of benchmarks/suite.sh: TechEmpower's plaintext and json tests the way the
// TechEmpower fasthttp entry serves them: /plaintext answers "Hello, World!" as text/plain,
// /json marshals a new struct with encoding/json on every request; fasthttp adds the Server and
// Date headers itself. Built offline in GOPATH mode against Debian's
// golang-github-valyala-fasthttp-dev (see build_fasthttp in suite.sh); run with GOMAXPROCS=1
// for the single-core comparison.
//
// Usage: fasthttp-peer -addr 127.0.0.1:8091   (prints "fasthttp listening on ..." when ready)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"
)

type message struct {
	Message string `json:"message"`
}

func handler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/plaintext":
		ctx.SetContentType("text/plain")
		ctx.WriteString("Hello, World!")
	case "/json":
		body, err := json.Marshal(&message{Message: "Hello, World!"})
		if err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType("application/json")
		ctx.Write(body)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	ln, err := net.Listen("tcp4", *addr)
	if err != nil {
		log.Fatal(err)
	}
	server := &fasthttp.Server{Handler: handler, Name: "fasthttp"}

	// SIGINT/SIGTERM: stop accepting and close idle connections, as the suite expects.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		server.Shutdown()
	}()

	fmt.Printf("fasthttp listening on http://%s/\n", *addr)
	if err := server.Serve(ln); err != nil {
		log.Fatal(err)
	}
}
