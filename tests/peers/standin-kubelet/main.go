// Command standin-kubelet serves the kubelet's streaming API (what kube-apiserver reaches for
// kubectl logs, exec, attach and port-forward) for tests/tests/kubelet_streams.rs, with the
// kubelet's own SPDY and WebSocket servers (k8s.io/kubelet/pkg/cri/streaming), over TLS that
// requires a client certificate of the given CA, as a kubelet with --client-ca-file does.
//
// "Containers" run on this machine: exec runs the command, attach echoes stdin, port-forward
// dials 127.0.0.1:PORT, logs are numbered lines (a container named "waiting" answers the
// kubelet's 400 for a container not started). Each request is logged on stderr as
// `request METHOD PATH?QUERY cn=CLIENT-CN upgrade=UPGRADE protocols=P1,P2` so the test can see
// what reached the kubelet (protocols: X-Stream-Protocol-Version for SPDY,
// Sec-WebSocket-Protocol for WebSocket), and each terminal size an exec receives as
// `resize WIDTHxHEIGHT`.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubelet/pkg/cri/streaming/portforward"
	remotecommandserver "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

const idleTimeout = 4 * time.Hour

type runtime struct{}

func (runtime) ExecInContainer(ctx context.Context, name string, uid types.UID, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	if len(cmd) == 0 {
		return fmt.Errorf("no command")
	}
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Env = append(os.Environ(), "POD="+name, "CONTAINER="+container, fmt.Sprintf("TTY=%v", tty))
	if in != nil {
		// A session's stdin stays open after the command exits (a terminal never says EOF):
		// it is copied without waiting for its end, as a container runtime ends the session
		// when the process ends (cmd.Stdin = in would make Wait wait for the next keystroke).
		stdin, err := c.StdinPipe()
		if err != nil {
			return err
		}
		go func() {
			io.Copy(stdin, in)
			stdin.Close()
		}()
	}
	if resize != nil {
		go func() {
			for size := range resize {
				fmt.Fprintf(os.Stderr, "resize %dx%d\n", size.Width, size.Height)
			}
		}()
	}
	c.Stdout = out
	if errOut != nil {
		c.Stderr = errOut
	} else {
		c.Stderr = out
	}
	err := c.Run()
	// A runtime closes the session's output when the process ends (kubectl stops reading then).
	out.Close()
	if errOut != nil {
		errOut.Close()
	}
	// The kubelet's runtimes report a command's exit status this way; kubectl exits with it.
	if exitErr, ok := err.(*exec.ExitError); ok {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

func (runtime) AttachContainer(ctx context.Context, name string, uid types.UID, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	fmt.Fprintf(out, "attached to %s/%s\n", name, container)
	if in != nil {
		_, err := io.Copy(out, in)
		return err
	}
	return nil
}

func (runtime) PortForward(ctx context.Context, name string, uid types.UID, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, stream); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(stream, conn); done <- struct{}{} }()
	<-done
	<-done
	return nil
}

// parts splits /verb/a/b/c into [a b c] after checking the verb.
func parts(path, verb string, n int) ([]string, bool) {
	rest, ok := strings.CutPrefix(path, "/"+verb+"/")
	if !ok {
		return nil, false
	}
	p := strings.Split(rest, "/")
	return p, len(p) == n
}

func logs(w http.ResponseWriter, r *http.Request, ns, pod, container string, lines int) {
	if container == "waiting" {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, pod), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	var all []string
	for i := 1; i <= lines; i++ {
		all = append(all, fmt.Sprintf("line %d of %s/%s/%s", i, ns, pod, container))
	}
	if t := q.Get("tailLines"); t != "" {
		n, _ := strconv.Atoi(t)
		if n < len(all) {
			all = all[len(all)-n:]
		}
	}
	stamp := func(s string) string {
		if q.Get("timestamps") == "true" {
			return "2026-01-01T00:00:00.000000000Z " + s
		}
		return s
	}
	var text strings.Builder
	for _, l := range all {
		text.WriteString(stamp(l) + "\n")
	}
	out := text.String()
	if lb := q.Get("limitBytes"); lb != "" {
		n, _ := strconv.Atoi(lb)
		if n < len(out) {
			out = out[:n]
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, out)
	flusher, _ := w.(http.Flusher)
	if q.Get("follow") != "true" || flusher == nil {
		return
	}
	flusher.Flush()
	for i := 1; ; i++ {
		select {
		case <-r.Context().Done():
			fmt.Fprintf(os.Stderr, "follow ended after %d lines\n", i-1)
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := io.WriteString(w, stamp(fmt.Sprintf("follow %d", i))+"\n"); err != nil {
			fmt.Fprintf(os.Stderr, "follow ended after %d lines\n", i-1)
			return
		}
		flusher.Flush()
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	cert := flag.String("cert", "", "serving certificate PEM")
	key := flag.String("key", "", "serving key PEM")
	clientCA := flag.String("client-ca", "", "CA whose client certificates are accepted")
	lines := flag.Int("log-lines", 5, "lines each container's log has")
	flag.Parse()

	pem, err := os.ReadFile(*clientCA)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rt := runtime{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			c := r.TLS.PeerCertificates[0].Subject
			cn = c.CommonName + " o=" + strings.Join(c.Organization, ",")
		}
		protocols := r.Header.Values("X-Stream-Protocol-Version")
		if len(protocols) == 0 {
			protocols = r.Header.Values("Sec-WebSocket-Protocol")
		}
		fmt.Fprintf(os.Stderr, "request %s %s cn=%s upgrade=%s protocols=%s\n", r.Method, r.URL.RequestURI(), cn, r.Header.Get("Upgrade"), strings.Join(protocols, ","))
		if p, ok := parts(r.URL.Path, "containerLogs", 3); ok {
			logs(w, r, p[0], p[1], p[2], *lines)
			return
		}
		if p, ok := parts(r.URL.Path, "exec", 3); ok {
			opts, err := remotecommandserver.NewOptions(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			remotecommandserver.ServeExec(w, r, rt, p[1], "", p[2], r.URL.Query()["command"], opts, idleTimeout, remotecommandconsts.DefaultStreamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
			return
		}
		if p, ok := parts(r.URL.Path, "attach", 3); ok {
			opts, err := remotecommandserver.NewOptions(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			remotecommandserver.ServeAttach(w, r, rt, p[1], "", p[2], opts, idleTimeout, remotecommandconsts.DefaultStreamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
			return
		}
		if p, ok := parts(r.URL.Path, "portForward", 2); ok {
			opts, err := portforward.NewV4Options(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			portforward.ServePortForward(w, r, rt, p[1], "", opts, idleTimeout, remotecommandconsts.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
			return
		}
		http.NotFound(w, r)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := &http.Server{
		Handler: handler,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pair},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
		},
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	if err := server.ServeTLS(ln, "", ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
