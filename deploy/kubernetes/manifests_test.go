// Package kubernetes holds keysync's Kubernetes manifests (kustomize); its
// tests render every variant with kustomize's own library, decode every
// object strictly into the k8s.io/api types, and check the fields the
// deployment relies on.
package kubernetes

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/keysync/keysync/deploy/internal/dst"
)

// rendered is one kustomize build, decoded.
type rendered struct {
	cronJobs    []batchv1.CronJob
	deployments []appsv1.Deployment
	services    []corev1.Service
	configMaps  []corev1.ConfigMap
	pvcs        []corev1.PersistentVolumeClaim
}

// build renders the kustomization in dir and decodes each object strictly
// (unknown or misspelt fields fail) into its k8s.io/api type.
func build(t *testing.T, dir string) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var r rendered
	for _, res := range m.Resources() {
		doc, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		kind := res.GetKind()
		name := kind + "/" + res.GetName()
		switch kind {
		case "CronJob":
			r.cronJobs = append(r.cronJobs, decode[batchv1.CronJob](t, name, doc))
		case "Deployment":
			r.deployments = append(r.deployments, decode[appsv1.Deployment](t, name, doc))
		case "Service":
			r.services = append(r.services, decode[corev1.Service](t, name, doc))
		case "ConfigMap":
			r.configMaps = append(r.configMaps, decode[corev1.ConfigMap](t, name, doc))
		case "PersistentVolumeClaim":
			r.pvcs = append(r.pvcs, decode[corev1.PersistentVolumeClaim](t, name, doc))
		default:
			t.Errorf("%s: %s renders a %s, which this test does not check", dir, name, kind)
		}
	}
	return r
}

func decode[T any](t *testing.T, name string, doc []byte) T {
	t.Helper()
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		t.Errorf("%s does not decode strictly: %v", name, err)
	}
	return v
}

func one[T any](t *testing.T, what string, items []T) *T {
	t.Helper()
	if len(items) != 1 {
		t.Fatalf("%d %s rendered, want 1", len(items), what)
	}
	return &items[0]
}

// nightly checks that the variant renders one CronJob and not serve's
// Deployment or Service, and that the CronJob never overlaps its runs and
// keeps a checked schedule in a time zone of its own; it returns the
// CronJob's spec.
func nightly(t *testing.T, variant string, r rendered) batchv1.CronJobSpec {
	t.Helper()
	if len(r.deployments) != 0 || len(r.services) != 0 {
		t.Errorf("%s also renders serve's Deployment or Service", variant)
	}
	s := one(t, "CronJobs", r.cronJobs).Spec
	if s.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy = %q, want Forbid", s.ConcurrencyPolicy)
	}
	if s.TimeZone == nil {
		t.Fatal("timeZone not set: the schedule would follow the controller's zone")
	}
	checkSchedule(t, "CronJob schedule", s.Schedule, *s.TimeZone)
	return s
}

func TestCronJob(t *testing.T) {
	t.Parallel()
	r := build(t, ".")
	s := nightly(t, "the CronJob variant", r)
	if s.StartingDeadlineSeconds == nil || *s.StartingDeadlineSeconds < 600 {
		t.Errorf("startingDeadlineSeconds = %v, want set (at least 10 minutes)", s.StartingDeadlineSeconds)
	}

	pod := checkRunJob(t, s.JobTemplate.Spec, batchv1.PodFailurePolicyActionFailJob)
	one(t, "PersistentVolumeClaims", r.pvcs)
	c := checkPod(t, r, pod)
	if !slices.Equal(c.Args[:1], []string{"run"}) {
		t.Errorf("args = %q, want keysync run", c.Args)
	}
}

// TestShards: the Indexed CronJob runs N shards of keysync, each pod its
// own shard (--shards N with JOB_COMPLETION_INDEX), its own file in the one
// directory of the state volume, all on the node holding the ReadWriteOnce
// claim.
func TestShards(t *testing.T) {
	t.Parallel()
	r := build(t, "shards")
	s := nightly(t, "the shards variant", r)
	js := s.JobTemplate.Spec
	if js.CompletionMode == nil || *js.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("completionMode = %v, want Indexed", js.CompletionMode)
	}
	if js.Completions == nil || js.Parallelism == nil || *js.Completions < 2 || *js.Parallelism != *js.Completions {
		t.Fatalf("completions %v, parallelism %v: want N ≥ 2 of each", js.Completions, js.Parallelism)
	}
	n := *js.Completions
	pod := checkRunJob(t, js, batchv1.PodFailurePolicyActionFailIndex)
	one(t, "PersistentVolumeClaims", r.pvcs)
	c := checkPod(t, r, pod)
	i := slices.Index(c.Args, "--shards")
	if c.Args[0] != "run" || i < 0 || i+1 >= len(c.Args) || c.Args[i+1] != fmt.Sprint(n) {
		t.Errorf("args = %q, want keysync run --shards %d", c.Args, n)
	}
	// Every shard's state file in the one directory of the claim (keysync
	// names each by its shard): after a change of N, a shard's backfill
	// carries its properties' record over from the earlier layout's files,
	// which it must see beside its own.
	var stateMount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == "/data" {
			stateMount = &c.VolumeMounts[i]
		}
	}
	if stateMount == nil || stateMount.SubPath != "" || stateMount.SubPathExpr != "" {
		t.Errorf("the state mount %+v: want the whole claim at /data, where every shard's file is", stateMount)
	}
	// One ReadWriteOnce claim: every shard's pod on one node.
	a := pod.Affinity
	if a == nil || a.PodAffinity == nil || len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Fatal("no required pod affinity: shards on other nodes could not mount the ReadWriteOnce claim")
	}
	term := a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
	if term.TopologyKey != "kubernetes.io/hostname" || term.LabelSelector == nil {
		t.Fatalf("pod affinity %+v: want the pods' own labels on one hostname", term)
	}
	for k, v := range term.LabelSelector.MatchLabels {
		if js.Template.Labels[k] != v {
			t.Errorf("pod affinity selects %s=%s; the pod has %q", k, v, js.Template.Labels[k])
		}
	}
}

// TestShardsSpread: one plain CronJob per shard, each `--shard I/N` with
// its own ReadWriteOnce claim and no pod affinity, so the shards may run on
// different nodes; otherwise the nights of the shards variant.
func TestShardsSpread(t *testing.T) {
	t.Parallel()
	const n = 4
	r := build(t, "shards-spread")
	if len(r.deployments) != 0 || len(r.services) != 0 {
		t.Error("the shards-spread variant also renders serve's Deployment or Service")
	}
	if len(r.cronJobs) != n {
		t.Fatalf("%d CronJobs rendered, want %d, one per shard", len(r.cronJobs), n)
	}
	indexed := one(t, "CronJobs of the shards variant", build(t, "shards").cronJobs).Spec

	shardOf := map[int]string{}    // shard I → CronJob
	claimOf := map[string]string{} // claim → CronJob
	for _, cj := range r.cronJobs {
		t.Run(cj.Name, func(t *testing.T) {
			s := cj.Spec
			if s.TimeZone == nil || indexed.TimeZone == nil {
				t.Fatal("timeZone not set")
			}
			if s.Schedule != indexed.Schedule || *s.TimeZone != *indexed.TimeZone {
				t.Errorf("schedule %q in %s, want the shards variant's %q in %s", s.Schedule, *s.TimeZone, indexed.Schedule, *indexed.TimeZone)
			}
			checkSchedule(t, "CronJob schedule", s.Schedule, *s.TimeZone)
			if s.ConcurrencyPolicy != batchv1.ForbidConcurrent || s.ConcurrencyPolicy != indexed.ConcurrencyPolicy {
				t.Errorf("concurrencyPolicy = %q, want Forbid (as the shards variant's %q)", s.ConcurrencyPolicy, indexed.ConcurrencyPolicy)
			}
			if s.StartingDeadlineSeconds == nil || *s.StartingDeadlineSeconds < 600 {
				t.Errorf("startingDeadlineSeconds = %v, want set (at least 10 minutes)", s.StartingDeadlineSeconds)
			}
			js := s.JobTemplate.Spec
			if js.CompletionMode != nil && *js.CompletionMode == batchv1.IndexedCompletion {
				t.Error("an Indexed Job: each of these CronJobs runs one shard")
			}
			pod := checkRunJob(t, js, batchv1.PodFailurePolicyActionFailJob)
			if a := pod.Affinity; a != nil && a.PodAffinity != nil {
				t.Error("a pod affinity: each shard has its own claim and may run on any node")
			}

			c := checkPod(t, r, pod)
			if slices.Contains(c.Args, "--shards") {
				t.Errorf("args = %q: --shards takes I from an Indexed Job's index", c.Args)
			}
			i := slices.Index(c.Args, "--shard")
			var shard, of int
			if c.Args[0] != "run" || i < 0 || i+1 >= len(c.Args) {
				t.Fatalf("args = %q, want keysync run --shard I/%d", c.Args, n)
			}
			if _, err := fmt.Sscanf(c.Args[i+1], "%d/%d", &shard, &of); err != nil || fmt.Sprintf("%d/%d", shard, of) != c.Args[i+1] || of != n || shard < 0 || shard >= n {
				t.Fatalf("--shard %q, want I/%d with 0 ≤ I < %d", c.Args[i+1], n, n)
			}
			if want := fmt.Sprintf("keysync-shard-%d", shard); cj.Name != want {
				t.Errorf("runs --shard %s but is named %s, want %s", c.Args[i+1], cj.Name, want)
			}
			if other, ok := shardOf[shard]; ok {
				t.Errorf("--shard %s: also run by %s", c.Args[i+1], other)
			}
			shardOf[shard] = cj.Name

			// checkPod found the state on a rendered ReadWriteOnce claim.
			claim := stateClaim(t, pod)
			if other, ok := claimOf[claim]; ok {
				t.Errorf("claim %s: also mounted by %s; each shard needs its own", claim, other)
			}
			claimOf[claim] = cj.Name
		})
	}
	if len(shardOf) != n {
		t.Errorf("shards run: %v, want each of 0 to %d once", shardOf, n-1)
	}
	// No claim left over (base's keysync-state is replaced, not kept).
	for _, pvc := range r.pvcs {
		if _, ok := claimOf[pvc.Name]; !ok {
			t.Errorf("claim %s is rendered but no shard mounts it", pvc.Name)
		}
	}
	if len(r.pvcs) != n {
		t.Errorf("%d claims rendered, want %d, one per shard", len(r.pvcs), n)
	}
}

// checkExitCodes: exit codes 2 (config or credentials), 5 (the fail-safe
// refused the plan) and 6 (done, but a person is needed) fail the Job, or
// with FailIndex the shard, at once: retrying cannot help. 1, 3 and 4 are
// worth a retry.
// checkRunJob checks the Job that runs keysync for a CronJob: a small retry
// count (per index when action is FailIndex, the Indexed Job of the shards
// variant), a deadline, the exit codes on which action is taken at once
// (checkExitCodes), and pods that are never restarted in place, as
// podFailurePolicy requires. It returns the pod spec.
func checkRunJob(t *testing.T, js batchv1.JobSpec, action batchv1.PodFailurePolicyAction) corev1.PodSpec {
	t.Helper()
	if action == batchv1.PodFailurePolicyActionFailIndex {
		if js.BackoffLimitPerIndex == nil || *js.BackoffLimitPerIndex > 3 {
			t.Errorf("backoffLimitPerIndex = %v, want a small retry count per shard", js.BackoffLimitPerIndex)
		}
	} else if js.BackoffLimit == nil || *js.BackoffLimit > 3 {
		t.Errorf("backoffLimit = %v, want a small retry count", js.BackoffLimit)
	}
	if js.ActiveDeadlineSeconds == nil {
		t.Error("activeDeadlineSeconds not set: a hung run would hold its lock forever")
	}
	pod := js.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %q, want Never (podFailurePolicy requires it)", pod.RestartPolicy)
	}
	checkExitCodes(t, js.PodFailurePolicy, action)
	return pod
}

func checkExitCodes(t *testing.T, p *batchv1.PodFailurePolicy, action batchv1.PodFailurePolicyAction) {
	t.Helper()
	if p == nil {
		t.Fatal("no podFailurePolicy")
	}
	failsAtOnce := map[int32]bool{}
	for _, rule := range p.Rules {
		if rule.Action != action || rule.OnExitCodes == nil {
			continue
		}
		if rule.OnExitCodes.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn {
			t.Errorf("%s rule operator = %q, want In", action, rule.OnExitCodes.Operator)
			continue
		}
		if c := rule.OnExitCodes.ContainerName; c != nil && *c != "keysync" {
			t.Errorf("%s rule names container %q", action, *c)
		}
		for _, v := range rule.OnExitCodes.Values {
			failsAtOnce[v] = true
		}
	}
	for code, want := range map[int32]bool{1: false, 2: true, 3: false, 4: false, 5: true, 6: true} {
		if failsAtOnce[code] != want {
			t.Errorf("exit %d: %s at once %v, want %v", code, action, failsAtOnce[code], want)
		}
	}
}

// stateClaim returns the claim mounted at /data, keysync's state directory.
func stateClaim(t *testing.T, pod corev1.PodSpec) string {
	t.Helper()
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath != "/data" {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				return v.PersistentVolumeClaim.ClaimName
			}
		}
	}
	t.Fatal("no claim mounted at /data")
	return ""
}

// variants are the kustomizations an operator applies, each with its own
// test above; base is a part of them, not a variant.
var variants = []string{".", "serve", "shards", "shards-spread"}

// TestVariants: every directory here with a kustomization is base or one
// of variants, so a new variant cannot go untested.
func TestVariants(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := os.Stat(path.Join(e.Name(), "kustomization.yaml")); !e.IsDir() || e.Name() == "base" || err != nil {
			continue
		}
		if !slices.Contains(variants, e.Name()) {
			t.Errorf("%s/ is a kustomization but not in variants, and no test renders it", e.Name())
		}
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	r := build(t, "serve")
	if len(r.cronJobs) != 0 {
		t.Error("the serve variant also renders the CronJob: two writers for one state file")
	}
	d := one(t, "Deployments", r.deployments)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1", d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy = %q, want Recreate (one pod at a time on a ReadWriteOnce volume)", d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	if pod.RestartPolicy != "" && pod.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("restartPolicy = %q", pod.RestartPolicy)
	}
	one(t, "PersistentVolumeClaims", r.pvcs)
	c := checkPod(t, r, pod)
	if c.Args[0] != "serve" {
		t.Errorf("args = %q, want keysync serve", c.Args)
	}
	if i := slices.Index(c.Args, "--listen"); i < 0 || i+1 >= len(c.Args) || c.Args[i+1] != ":8080" {
		t.Errorf("args = %q, want --listen :8080", c.Args)
	}
	var port *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].ContainerPort == 8080 {
			port = &c.Ports[i]
		}
	}
	if port == nil || port.Name == "" {
		t.Fatalf("no named container port 8080: %+v", c.Ports)
	}
	for name, p := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"liveness": {c.LivenessProbe, "/livez"}, "readiness": {c.ReadinessProbe, "/readyz"}, "startup": {c.StartupProbe, "/livez"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET of %s", name, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || (g.Port != intstr.FromString(port.Name) && g.Port != intstr.FromInt32(8080)) {
			t.Errorf("%s probe = GET %s on %s, want %s on %s", name, g.Path, g.Port.String(), p.path, port.Name)
		}
	}
	svc := one(t, "Services", r.services)
	labels := d.Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if labels[k] != v {
			t.Errorf("Service selects %s=%s; the pod has %q", k, v, labels[k])
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("Deployment selects %s=%s; the pod has %q", k, v, labels[k])
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != intstr.FromString(port.Name) {
		t.Errorf("Service ports = %+v, want one to %q", svc.Spec.Ports, port.Name)
	}
	cm := one(t, "ConfigMaps", r.configMaps)
	cfg := map[string]any{}
	if err := yaml.Unmarshal([]byte(cm.Data["keysync.yaml"]), &cfg); err != nil {
		t.Fatal(err)
	}
	h, m, err := dst.ParseCron(cfg["schedule"].(string))
	if err != nil {
		t.Fatal(err)
	}
	checkTime(t, "config schedule", h, m, firstZone(t, cfg))
}

// checkPod checks what the CronJob's and the Deployment's pods share: the
// restricted security context, the volumes and the config's paths. It
// returns the keysync container.
func checkPod(t *testing.T, r rendered, pod corev1.PodSpec) corev1.Container {
	t.Helper()
	sc := pod.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no pod securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("pod runAsNonRoot not true")
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Error("pod runAsUser not a non-root uid")
	case sc.FSGroup == nil:
		t.Error("no fsGroup: the volume would not be writable by the non-root user")
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("seccompProfile not RuntimeDefault")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("a service account token is mounted; keysync never talks to the API server")
	}
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "keysync" {
		t.Fatalf("containers = %d, want one named keysync", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "keysync:latest" {
		t.Errorf("image = %q, want keysync:latest (set with kustomize edit set image)", c.Image)
	}
	csc := c.SecurityContext
	switch {
	case csc == nil:
		t.Fatal("no container securityContext")
	case csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation not false")
	case csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem not true")
	case csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) != 0:
		t.Error("capabilities: want drop [ALL], add none")
	case csc.Privileged != nil && *csc.Privileged:
		t.Error("privileged")
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("no memory limit")
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{} // by mount path
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("mount %s: no volume %q", m.MountPath, m.Name)
		}
		mounts[m.MountPath] = m
	}
	if v := volumes[mounts["/tmp"].Name]; v.EmptyDir == nil {
		t.Error("/tmp is not an emptyDir (the root filesystem is read-only)")
	}

	// --config names a file of the generated ConfigMap.
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("args = %q: no --config", c.Args)
	}
	cfgPath := c.Args[i+1]
	cm := one(t, "ConfigMaps", r.configMaps)
	cfgMount, ok := mounts[path.Dir(cfgPath)]
	v := volumes[cfgMount.Name]
	if !ok || v.ConfigMap == nil || v.ConfigMap.Name != cm.Name || !cfgMount.ReadOnly {
		t.Fatalf("--config %s is not on a read-only mount of ConfigMap %s", cfgPath, cm.Name)
	}
	if !strings.HasPrefix(cm.Name, "keysync-config-") {
		t.Errorf("ConfigMap %q: want the generator's content-hash suffix", cm.Name)
	}
	raw, ok := cm.Data[path.Base(cfgPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Name, path.Base(cfgPath))
	}
	cfg := map[string]any{}
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}

	// state: on a rendered PVC, which is ReadWriteOnce.
	state, _ := cfg["state"].(string)
	stateMount, ok := mounts[path.Dir(state)]
	v = volumes[stateMount.Name]
	if !ok || v.PersistentVolumeClaim == nil || stateMount.ReadOnly {
		t.Errorf("state %q is not on a writable mount of a PVC", state)
	} else if i := slices.IndexFunc(r.pvcs, func(p corev1.PersistentVolumeClaim) bool { return p.Name == v.PersistentVolumeClaim.ClaimName }); i < 0 {
		t.Errorf("state %q is on claim %s, which is not rendered", state, v.PersistentVolumeClaim.ClaimName)
	} else if pvc := r.pvcs[i]; !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("PVC %s access modes = %v, want [ReadWriteOnce] (SQLite's WAL and the run lock need one host)", pvc.Name, pvc.Spec.AccessModes)
	}

	// The state key is created by the first backfill: it must lie on the
	// writable state volume (or come from KEYSYNC_STATE_KEY).
	if key, _ := cfg["state_key_file"].(string); key != "" {
		if m, ok := mounts[path.Dir(key)]; !ok || m.Name != stateMount.Name {
			t.Errorf("state_key_file %q is not on the state volume", key)
		}
	}

	// Every other *_file of the config is a key of the Secret, mounted read-only.
	secret := decode[corev1.Secret](t, "secret.example.yaml", readFile(t, "secret.example.yaml"))
	files := secretFiles(cfg)
	if len(files) == 0 {
		t.Error("the config reads no secret from a file")
	}
	for _, f := range files {
		m, ok := mounts[path.Dir(f)]
		v := volumes[m.Name]
		if !ok || v.Secret == nil || v.Secret.SecretName != secret.Name || !m.ReadOnly {
			t.Errorf("secret file %s is not on a read-only mount of Secret %s", f, secret.Name)
			continue
		}
		if _, ok := secret.StringData[path.Base(f)]; !ok {
			t.Errorf("secret file %s: secret.example.yaml has no key %s", f, path.Base(f))
		}
	}
	for _, v := range []corev1.Volume{volumes[mounts["/etc/keysync"].Name], volumes[mounts[path.Dir(files[0])].Name]} {
		mode := (*int32)(nil)
		if v.ConfigMap != nil {
			mode = v.ConfigMap.DefaultMode
		} else if v.Secret != nil {
			mode = v.Secret.DefaultMode
		}
		if mode == nil || *mode&0o007 != 0 {
			t.Errorf("volume %s: files readable by others (defaultMode %v)", v.Name, mode)
		}
	}
	return c
}

// secretFiles returns the values of every *_file key in the config but
// state_key_file (a file keysync writes).
func secretFiles(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && strings.HasSuffix(k, "_file") && k != "state_key_file" {
				out = append(out, s)
			} else {
				out = append(out, secretFiles(x)...)
			}
		}
	case []any:
		for _, x := range v {
			out = append(out, secretFiles(x)...)
		}
	}
	slices.Sort(out)
	return out
}

func firstZone(t *testing.T, cfg map[string]any) string {
	t.Helper()
	props, _ := cfg["properties"].([]any)
	if len(props) == 0 {
		t.Fatal("config has no properties")
	}
	zone, _ := props[0].(map[string]any)["timezone"].(string)
	return zone
}

func checkSchedule(t *testing.T, what, spec, zone string) {
	t.Helper()
	h, m, err := dst.ParseCron(spec)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	checkTime(t, what, h, m, zone)
}

// checkTime holds a nightly time to the manifests' comment: it happens
// exactly once a day in the given zone and in every zone of dst.Zones.
func checkTime(t *testing.T, what string, h, m int, zone string) {
	t.Helper()
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2046, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, z := range append([]string{zone}, dst.Zones...) {
		loc, err := time.LoadLocation(z)
		if err != nil {
			t.Fatalf("%s: time zone %q: %v", what, z, err)
		}
		if err := dst.Check(loc, h, m, from, to); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
