package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

// serveSim runs tierq sim with args on a free port and returns its address
// and a stop function that cancels it and returns its exit code (-1 if it
// did not stop); the test's cleanup stops it too.
func serveSim(t *testing.T, args ...string) (addr string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"sim", "--addr", "127.0.0.1:0", "--latency-scale", "0"}, args...), io.Discard, pw)
		pw.Close()
	}()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				t.Error("simulator did not stop")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("simulator printed nothing")
	}
	var line struct{ Addr string }
	if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Addr == "" {
		t.Fatalf("first log line %q: want JSON with addr (%v)", sc.Text(), err)
	}
	go io.Copy(io.Discard, pr)
	return line.Addr, stop
}

// http2Only is a client that speaks only HTTP/2: cleartext with prior
// knowledge, or over TLS with roots.
func http2Only(roots *x509.CertPool) *http.Client {
	p := new(http.Protocols)
	tr := &http.Transport{Protocols: p}
	if roots == nil {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP2(true)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// converseWith makes one Converse call through the real SDK client with
// the given HTTP client, as an SDK that speaks only HTTP/2 would.
func converseWith(t *testing.T, endpoint string, c *http.Client) {
	t.Helper()
	br := bedrockruntime.New(bedrockruntime.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), HTTPClient: c, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	out, err := br.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String("us.amazon.nova-micro-v1:0"),
		Messages: []types.Message{{Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "Summarize: the meeting moved to Friday."}}}},
	})
	if err != nil {
		t.Fatalf("Converse over HTTP/2: %v", err)
	}
	if out.Usage == nil || aws.ToInt32(out.Usage.OutputTokens) == 0 {
		t.Errorf("Converse answered %+v, want an answer with usage", out)
	}
}

// The simulator speaks cleartext HTTP/2 with prior knowledge and HTTP/1.1 on
// one port: an HTTP/2-only client (as Node's AWS SDK v3 is) gets answers.
func TestSimSpeaksHTTP2Cleartext(t *testing.T) {
	addr, _ := serveSim(t)
	for name, c := range map[string]*http.Client{"HTTP/2": http2Only(nil), "HTTP/1.1": http.DefaultClient} {
		resp, err := c.Get("http://" + addr + "/_sim/stats")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if want := map[string]int{"HTTP/2": 2, "HTTP/1.1": 1}[name]; resp.ProtoMajor != want || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s %d, want HTTP/%d 200", name, resp.Proto, resp.StatusCode, want)
		}
	}
	converseWith(t, "http://"+addr, http2Only(nil))
}

// With --tls-cert and --tls-key the simulator serves HTTPS, HTTP/2 chosen by
// ALPN.
func TestSimServesHTTPSWithALPN(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t)
	addr, _ := serveSim(t, "--tls-cert", certFile, "--tls-key", keyFile)
	resp, err := http2Only(roots).Get("https://" + addr + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("%s, ALPN %+v; want HTTP/2 over TLS", resp.Proto, resp.TLS)
	}
	converseWith(t, "https://"+addr, http2Only(roots))
}

func TestSimTLSFlagsGoTogether(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"sim", "--addr", "127.0.0.1:0", "--tls-cert", "c.pem"}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "--tls-key") {
		t.Errorf("exit %d, stderr %q; want a refusal naming --tls-key", code, errOut.String())
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// the roots that trust it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tierq sim"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
