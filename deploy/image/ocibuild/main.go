// Command ocibuild assembles keysync's container image without a container
// engine or a registry: one layer holding the static keysync binary, the CA
// roots, an /etc/passwd with a non-root user, /tmp and /data, written as an
// OCI image layout (a directory) and, with -tar, as a tarball that
// `docker load` and `podman load` accept (it carries Docker's manifest.json
// beside the OCI index). Time zones need no files: keysync embeds tzdata.
//
// The output is reproducible: every timestamp is -epoch (SOURCE_DATE_EPOCH
// by default), entries are sorted, and owners are numeric.
//
//	CGO_ENABLED=0 go build -trimpath -o keysync ./cmd/keysync
//	go -C deploy run ./image/ocibuild -binary ../keysync -out ../keysync-oci -tar ../keysync-image.tar
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The image's fixed paths and user; the Dockerfile and the manifests use
// the same ones.
const (
	BinaryPath = "/usr/local/bin/keysync"
	CAPath     = "/etc/ssl/certs/ca-certificates.crt"
	UID        = 65532
	User       = "65532:65532"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ocibuild:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ocibuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := Options{}
	fs.StringVar(&o.Binary, "binary", "", "the static keysync binary (required)")
	fs.StringVar(&o.CA, "ca", CAPath, "PEM bundle of CA roots to ship (Debian's ca-certificates)")
	fs.StringVar(&o.Tag, "tag", "keysync:dev", "the image's name and tag")
	fs.StringVar(&o.Arch, "arch", runtime.GOARCH, "the binary's GOARCH")
	out := fs.String("out", "", "OCI image layout directory to write (required)")
	tarPath := fs.String("tar", "", "also write the layout as a tarball for docker/podman load")
	epoch := fs.Int64("epoch", envEpoch(), "timestamp of every file and of the image (default $SOURCE_DATE_EPOCH, else 0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Binary == "" || *out == "" {
		return errors.New("-binary and -out are required")
	}
	o.Time = time.Unix(*epoch, 0).UTC()
	files, err := Build(o)
	if err != nil {
		return err
	}
	if err := writeDir(*out, files); err != nil {
		return err
	}
	if *tarPath != "" {
		if err := writeTar(*tarPath, files, o.Time); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "ocibuild: %s written to %s (manifest %s)\n", o.Tag, *out, files.manifestDigest)
	return nil
}

func envEpoch() int64 {
	n, _ := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	return n
}

// Options say what goes into the image.
type Options struct {
	Binary, CA, Tag, Arch string
	Time                  time.Time
}

// Layout is an OCI image layout's files by path, and the manifest's digest.
type Layout struct {
	files          map[string][]byte
	manifestDigest string
}

// Build assembles the layer, config, manifest and index in memory.
func Build(o Options) (*Layout, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	ca, err := os.ReadFile(o.CA)
	if err != nil {
		return nil, fmt.Errorf("CA roots: %w (install Debian's ca-certificates)", err)
	}
	layer, err := rootfs(o.Time, bin, ca)
	if err != nil {
		return nil, err
	}
	l := &Layout{files: map[string][]byte{}}
	layerDigest := l.blob(layer)
	config, err := json.Marshal(imageConfig{
		Created:      o.Time.Format(time.RFC3339),
		Architecture: o.Arch,
		OS:           "linux",
		Config: containerConfig{
			User:         User,
			Entrypoint:   []string{BinaryPath},
			Cmd:          []string{"demo"},
			Env:          []string{"SSL_CERT_FILE=" + CAPath},
			WorkingDir:   "/data",
			ExposedPorts: map[string]struct{}{"8080/tcp": {}},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "keysync",
				"org.opencontainers.image.description": "keeps guest door access in step with bookings",
			},
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{layerDigest}},
		History: []history{{Created: o.Time.Format(time.RFC3339), CreatedBy: "deploy/image/ocibuild"}},
	})
	if err != nil {
		return nil, err
	}
	configDigest := l.blob(config)
	manifest, err := json.Marshal(ociManifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.manifest.v1+json",
		Config:        descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: configDigest, Size: int64(len(config))},
		Layers:        []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: layerDigest, Size: int64(len(layer))}},
	})
	if err != nil {
		return nil, err
	}
	l.manifestDigest = l.blob(manifest)
	tag := o.Tag[strings.LastIndex(o.Tag, ":")+1:]
	index, err := json.Marshal(ociIndex{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.index.v1+json",
		Manifests: []descriptor{{
			MediaType: "application/vnd.oci.image.manifest.v1+json",
			Digest:    l.manifestDigest,
			Size:      int64(len(manifest)),
			Annotations: map[string]string{
				"org.opencontainers.image.ref.name": tag,
				"io.containerd.image.name":          qualified(o.Tag),
			},
		}},
	})
	if err != nil {
		return nil, err
	}
	l.files["index.json"] = index
	l.files["oci-layout"] = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	// Docker's `docker save` format, for engines that load only that.
	l.files["manifest.json"], err = json.Marshal([]dockerManifest{{
		Config:   blobPath(configDigest),
		RepoTags: []string{o.Tag},
		Layers:   []string{blobPath(layerDigest)},
	}})
	return l, err
}

// qualified spells a short name the way containerd and Docker store it:
// keysync:dev is docker.io/library/keysync:dev.
func qualified(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	switch {
	case !found:
		return "docker.io/library/" + ref
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		return "docker.io/" + ref
	}
	return ref
}

// blob stores b under blobs/sha256 and returns its digest.
func (l *Layout) blob(b []byte) string {
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	l.files[blobPath(d)] = b
	return d
}

func blobPath(digest string) string {
	return "blobs/sha256/" + digest[len("sha256:"):]
}

// rootfs is the image's one layer, an uncompressed tar.
func rootfs(mtime time.Time, bin, ca []byte) ([]byte, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nkeysync:x:%d:%d:keysync:/data:/sbin/nologin\n", UID, UID)
	group := fmt.Sprintf("root:x:0:\nkeysync:x:%d:\n", UID)
	type entry struct {
		name     string
		mode     int64
		uid      int
		body     []byte
		isDir    bool
		typeflag byte
	}
	dir := func(name string, mode int64, uid int) entry {
		return entry{name: name + "/", mode: mode, uid: uid, isDir: true}
	}
	file := func(name string, mode int64, body []byte) entry {
		return entry{name: name, mode: mode, body: body}
	}
	entries := []entry{
		dir("data", 0o700, UID),
		dir("etc", 0o755, 0),
		file("etc/group", 0o644, []byte(group)),
		file("etc/passwd", 0o644, []byte(passwd)),
		dir("etc/ssl", 0o755, 0),
		dir("etc/ssl/certs", 0o755, 0),
		file(CAPath[1:], 0o644, ca),
		dir("tmp", 0o1777, 0),
		dir("usr", 0o755, 0),
		dir("usr/local", 0o755, 0),
		dir("usr/local/bin", 0o755, 0),
		file(BinaryPath[1:], 0o755, bin),
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.isDir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// paths returns the layout's file paths, sorted.
func (l *Layout) paths() []string {
	var p []string
	for k := range l.files {
		p = append(p, k)
	}
	sort.Strings(p)
	return p
}

func writeDir(dir string, l *Layout) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, p := range l.paths() {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, l.files[p], 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeTar(name string, l *Layout, mtime time.Time) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	for _, p := range l.paths() {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d+"/")
	}
	names = append(names, l.paths()...)
	sort.Strings(names)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(l.files[n]))}
		if n[len(n)-1] == '/' {
			h.Mode, h.Typeflag, h.Size = 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(l.files[n]); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// The OCI image spec's JSON documents, as far as keysync's image uses them.

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type ociManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type ociIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type imageConfig struct {
	Created      string          `json:"created"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []history       `json:"history"`
}

type containerConfig struct {
	User         string              `json:"User"`
	Entrypoint   []string            `json:"Entrypoint"`
	Cmd          []string            `json:"Cmd"`
	Env          []string            `json:"Env"`
	WorkingDir   string              `json:"WorkingDir"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	Labels       map[string]string   `json:"Labels"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}
