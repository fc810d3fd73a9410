// Package helm tests the assistiv-gateway chart with Helm's own Go module:
// lint, then render (helm template) and assert the rendered objects. It is
// its own module so Helm and k8s.io stay out of the gateway's go.mod;
// `make test-helm` (part of `make test`) runs it.
package helm

import (
	"bytes"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "assistiv-gateway"

// validValues are the least a cluster install needs.
func validValues() map[string]any {
	return map[string]any{
		"secrets": map[string]any{
			"adminKey":    "chart-test-admin-key-0123",
			"masterKey":   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
			"clusterKey":  "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=",
			"postgresURL": "postgres://gw:secret@postgres:5432/gw",
		},
	}
}

// merge sets dotted paths in a copy of base.
func merge(base map[string]any, sets map[string]any) map[string]any {
	for path, v := range sets {
		m := base
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	return base
}

// render runs helm template (client-side dry run) and returns the objects.
func render(t *testing.T, vals map[string]any) (map[string][]byte, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName, inst.Namespace, inst.Replace = "gw", "llm", true
	kv, err := common.ParseKubeVersion("v1.31.0") // Helm's default (1.20) is older than the chart allows
	if err != nil {
		t.Fatal(err)
	}
	inst.KubeVersion = kv
	r, err := inst.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*release.Release)
	if !ok {
		t.Fatalf("release type %T", r)
	}
	objs := map[string][]byte{}
	for _, doc := range strings.Split(rel.Manifest, "\n---") {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue
		}
		objs[meta.Kind+"/"+meta.Metadata.Name] = []byte(doc)
	}
	return objs, nil
}

func decode(t *testing.T, objs map[string][]byte, key string, into any) {
	t.Helper()
	raw, ok := objs[key]
	if !ok {
		t.Fatalf("no %s rendered; have %v", key, keys(objs))
	}
	if err := yaml.UnmarshalStrict(raw, into); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestChartLints(t *testing.T) {
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = "llm"
	res := lint.Run([]string{chartDir}, validValues())
	for _, m := range res.Messages {
		t.Logf("lint: %s", m)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("helm lint --strict: %v", res.Errors)
	}
}

// TestChartRendersAClusterStatefulSet: every pod gets the cluster
// variables (its own advertise address and name, the shared seeds and
// secrets) and its own volume claim; the Services, the PDB and the probes
// are there.
func TestChartRendersAClusterStatefulSet(t *testing.T) {
	objs, err := render(t, validValues())
	if err != nil {
		t.Fatal(err)
	}
	var sts appsv1.StatefulSet
	decode(t, objs, "StatefulSet/gw-assistiv-gateway", &sts)
	if *sts.Spec.Replicas != 3 || sts.Spec.ServiceName != "gw-assistiv-gateway-headless" || sts.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement {
		t.Errorf("statefulset spec: replicas %d service %q policy %q", *sts.Spec.Replicas, sts.Spec.ServiceName, sts.Spec.PodManagementPolicy)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Fatalf("volume claim templates %+v: each pod needs its own data claim", sts.Spec.VolumeClaimTemplates)
	}
	pod := sts.Spec.Template.Spec
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 60 {
		t.Errorf("termination grace %v: too short for the hand-over", g)
	}
	c := pod.Containers[0]
	if !mountsAt(c, "data", "/data") {
		t.Errorf("container does not mount the claim at /data: %+v", c.VolumeMounts)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	want := map[string]string{
		"ASSISTIV_DATA_DIR":          "/data",
		"ASSISTIV_NODE_NAME":         "$(POD_NAME)",
		"ASSISTIV_CLUSTER_BIND":      "0.0.0.0:7946",
		"ASSISTIV_CLUSTER_ADVERTISE": "$(POD_IP):7946",
		"ASSISTIV_CLUSTER_REMOTE":    "$(POD_IP):8090",
		"ASSISTIV_CLUSTER_JOIN": "gw-assistiv-gateway-0.gw-assistiv-gateway-headless.llm.svc.cluster.local:7946," +
			"gw-assistiv-gateway-1.gw-assistiv-gateway-headless.llm.svc.cluster.local:7946," +
			"gw-assistiv-gateway-2.gw-assistiv-gateway-headless.llm.svc.cluster.local:7946",
		"ASSISTIV_METRICS_LISTEN": "0.0.0.0:9100",
	}
	for k, v := range want {
		if env[k].Value != v {
			t.Errorf("env %s = %q, want %q", k, env[k].Value, v)
		}
	}
	for k, secretKey := range map[string]string{"ASSISTIV_ADMIN_KEY": "admin-key", "ASSISTIV_MASTER_KEY": "master-key",
		"ASSISTIV_CLUSTER_KEY": "cluster-key", "ASSISTIV_POSTGRES_URL": "postgres-url"} {
		ref := env[k].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "gw-assistiv-gateway" || ref.SecretKeyRef.Key != secretKey {
			t.Errorf("env %s is not read from the Secret's %s: %+v", k, secretKey, env[k])
		}
	}
	if env["POD_IP"].ValueFrom == nil || env["POD_IP"].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("POD_IP not from the downward API: %+v", env["POD_IP"])
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %+v liveness %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || *sc.RunAsUser != 65532 {
		t.Errorf("pod security context %+v: want non-root 65532", sc)
	}

	var headless, svc corev1.Service
	decode(t, objs, "Service/gw-assistiv-gateway-headless", &headless)
	if headless.Spec.ClusterIP != "None" || !headless.Spec.PublishNotReadyAddresses || !hasPort(headless, "memberlist", 7946) || !hasPort(headless, "remote", 8090) {
		t.Errorf("headless service %+v", headless.Spec)
	}
	decode(t, objs, "Service/gw-assistiv-gateway", &svc)
	if !hasPort(svc, "http", 80) {
		t.Errorf("http service ports %+v", svc.Spec.Ports)
	}
	var pdb policyv1.PodDisruptionBudget
	decode(t, objs, "PodDisruptionBudget/gw-assistiv-gateway", &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("pdb %+v", pdb.Spec)
	}
	var sec corev1.Secret
	decode(t, objs, "Secret/gw-assistiv-gateway", &sec)
	if sec.StringData["postgres-url"] != "postgres://gw:secret@postgres:5432/gw" || sec.StringData["cluster-key"] == "" {
		t.Errorf("secret keys %v", keysOf(sec.StringData))
	}
	if _, ok := objs["ServiceMonitor/gw-assistiv-gateway"]; ok {
		t.Errorf("a ServiceMonitor was rendered while off")
	}
}

func mountsAt(c corev1.Container, name, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == name && m.MountPath == path {
			return true
		}
	}
	return false
}

func hasPort(s corev1.Service, name string, port int32) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name && p.Port == port {
			return true
		}
	}
	return false
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestChartExistingSecretAndServiceMonitor: with an existing Secret the
// chart renders none and every secret variable reads that one; the
// ServiceMonitor appears when asked for; tracing sets the OTEL variables.
func TestChartExistingSecretAndServiceMonitor(t *testing.T) {
	vals := merge(map[string]any{}, map[string]any{
		"secrets.existingSecret":         "gw-keys",
		"metrics.serviceMonitor.enabled": true,
		"metrics.serviceMonitor.labels":  map[string]any{"release": "prom"},
		"tracing.otlpEndpoint":           "http://otel-collector:4318",
		"replicaCount":                   5,
	})
	objs, err := render(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	for k := range objs {
		if strings.HasPrefix(k, "Secret/") {
			t.Errorf("rendered %s although an existing Secret was named", k)
		}
	}
	var sts appsv1.StatefulSet
	decode(t, objs, "StatefulSet/gw-assistiv-gateway", &sts)
	env := map[string]corev1.EnvVar{}
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	for _, k := range []string{"ASSISTIV_ADMIN_KEY", "ASSISTIV_MASTER_KEY", "ASSISTIV_CLUSTER_KEY", "ASSISTIV_POSTGRES_URL"} {
		if ref := env[k].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "gw-keys" {
			t.Errorf("%s does not read the existing Secret: %+v", k, env[k])
		}
	}
	if got := strings.Count(env["ASSISTIV_CLUSTER_JOIN"].Value, ","); got != 2 {
		t.Errorf("5 replicas, 3 seeds: join list %q", env["ASSISTIV_CLUSTER_JOIN"].Value)
	}
	if env["OTEL_EXPORTER_OTLP_ENDPOINT"].Value != "http://otel-collector:4318" || env["OTEL_TRACES_SAMPLER_ARG"].Value != "0.01" {
		t.Errorf("tracing env: %+v %+v", env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_TRACES_SAMPLER_ARG"])
	}
	sm, ok := objs["ServiceMonitor/gw-assistiv-gateway"]
	if !ok {
		t.Fatalf("no ServiceMonitor; have %v", keys(objs))
	}
	if !bytes.Contains(sm, []byte("port: metrics")) || !bytes.Contains(sm, []byte("release: prom")) {
		t.Errorf("ServiceMonitor:\n%s", sm)
	}
}

// TestChartRefusesIncompleteSettings: each missing or contradictory
// setting fails the render with its own message.
func TestChartRefusesIncompleteSettings(t *testing.T) {
	for _, c := range []struct {
		name string
		sets map[string]any
		want string
	}{
		{"cluster without postgres", map[string]any{"secrets.postgresURL": ""}, "cluster mode needs Postgres"},
		{"cluster without key", map[string]any{"secrets.clusterKey": ""}, "cluster mode needs secrets.clusterKey"},
		{"short admin key", map[string]any{"secrets.adminKey": "short"}, "secrets.adminKey (at least 16 characters)"},
		{"no master key", map[string]any{"secrets.masterKey": ""}, "secrets.masterKey"},
		{"replicas without cluster", map[string]any{"cluster.enabled": false}, "replicaCount > 1 needs cluster.enabled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, merge(validValues(), c.sets))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("render = %v, want an error containing %q", err, c.want)
			}
		})
	}
	// A single node without cluster mode needs neither Postgres nor a cluster key.
	objs, err := render(t, merge(validValues(), map[string]any{"cluster.enabled": false, "replicaCount": 1,
		"secrets.postgresURL": "", "secrets.clusterKey": ""}))
	if err != nil {
		t.Fatalf("single node: %v", err)
	}
	var sts appsv1.StatefulSet
	decode(t, objs, "StatefulSet/gw-assistiv-gateway", &sts)
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "ASSISTIV_CLUSTER_") || e.Name == "ASSISTIV_POSTGRES_URL" {
			t.Errorf("single node gets %s", e.Name)
		}
	}
}
