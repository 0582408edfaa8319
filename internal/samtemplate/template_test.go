package samtemplate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

const (
	templatePath = "../../template.yaml"
	makefilePath = "../../Makefile"
)

// The template's wiring, by logical ID.
const (
	function    = "ExampleFunction"
	layerArm64  = "PrometheusLambdaLayerArm64"
	layerX8664  = "PrometheusLambdaLayerX8664"
	secretParam = "AuthSecretArn"
)

// missingInGoformation are SAM properties goformation v7.14.9 does not know
// (it refuses unknown properties of SAM resources): they are checked on
// the raw template and left out of what goformation parses.
var missingInGoformation = map[string][]string{
	"AWS::Serverless::LayerVersion": {"CompatibleArchitectures"},
}

// defaultConditions are the template's conditions under its parameters'
// defaults: GATEWAY from this stack's load balancer, no VPC endpoint.
var defaultConditions = map[string]bool{
	"HasGatewayUrl":         false,
	"CreateSecretsEndpoint": false,
}

var pseudoParameters = []string{
	"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}

// raw is the template as a generic document, intrinsic functions in their
// long form ({"Ref": …}, {"Fn::Sub": …}) and unresolved.
func raw(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	j, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func section(doc map[string]any, name string) map[string]any {
	m, _ := doc[name].(map[string]any)
	return m
}

func resource(t *testing.T, doc map[string]any, id string) map[string]any {
	t.Helper()
	r, ok := section(doc, "Resources")[id].(map[string]any)
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	return r
}

// path follows keys (strings) and indexes (ints) into v.
func path(v any, steps ...any) any {
	for _, s := range steps {
		switch s := s.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[s]
		case int:
			a, _ := v.([]any)
			if s >= len(a) {
				return nil
			}
			v = a[s]
		}
	}
	return v
}

func ref(name string) map[string]any { return map[string]any{"Ref": name} }

// markers: what the typed parse puts in place of references, so that the
// typed resources show what they point at.
func paramMarker(name string) string { return "{{param " + name + "}}" }
func refMarker(name string) string   { return "{{Ref " + name + "}}" }
func getAttMarker(id, attr string) string {
	return "{{GetAtt " + id + "." + attr + "}}"
}

// typed parses the template with goformation, references replaced by
// markers: parameters by paramMarker (lists by two of them, "Name[0]" and
// "Name[1]"), Ref to resources by refMarker, Fn::GetAtt by getAttMarker,
// and Fn::Sub by its string with those substituted. Fn::If takes the
// branch of the parameters' defaults (defaultConditions).
func typed(t *testing.T) *cloudformation.Template {
	t.Helper()
	doc := raw(t)
	for id, r := range section(doc, "Resources") {
		r := r.(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		for _, p := range missingInGoformation[r["Type"].(string)] {
			if _, ok := props[p]; !ok {
				t.Errorf("%s: no %s (goformation does not know it; check it here)", id, p)
			}
			delete(props, p)
		}
	}
	params := section(doc, "Parameters")
	overrides := map[string]any{}
	for name, p := range params {
		typ, _ := path(p, "Type").(string)
		switch {
		case strings.HasPrefix(typ, "List<") || typ == "CommaDelimitedList":
			overrides[name] = []any{paramMarker(name + "[0]"), paramMarker(name + "[1]")}
		default:
			overrides[name] = paramMarker(name) // CloudFormation passes parameters as strings
		}
	}
	resolveRef := func(name string, tpl any) any {
		if _, ok := section(doc, "Resources")[name]; ok {
			return refMarker(name)
		}
		return intrinsics.Ref("Ref", name, tpl)
	}
	resolveGetAtt := func(input any) any {
		switch in := input.(type) {
		case []any:
			if len(in) == 2 {
				return getAttMarker(fmt.Sprint(in[0]), fmt.Sprint(in[1]))
			}
		case string:
			id, attr, _ := strings.Cut(in, ".")
			return getAttMarker(id, attr)
		}
		return nil
	}
	subVar := regexp.MustCompile(`\$\{([^!}][^}]*)\}`)
	opts := &intrinsics.ProcessorOptions{
		ParameterOverrides: overrides,
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Ref": func(_ string, input, tpl any) any {
				name, _ := input.(string)
				return resolveRef(name, tpl)
			},
			"Fn::GetAtt": func(_ string, input, _ any) any { return resolveGetAtt(input) },
			"Fn::If": func(_ string, input, _ any) any {
				a, _ := input.([]any)
				if len(a) != 3 {
					return nil
				}
				value, ok := defaultConditions[fmt.Sprint(a[0])]
				if !ok {
					t.Errorf("Fn::If on condition %v: add it to defaultConditions", a[0])
				}
				if value {
					return a[1]
				}
				return a[2]
			},
			"Fn::Sub": func(_ string, input, tpl any) any {
				s, _ := input.(string)
				vars := map[string]any{}
				if a, ok := input.([]any); ok && len(a) == 2 {
					s, _ = a[0].(string)
					vars, _ = a[1].(map[string]any)
				}
				return subVar.ReplaceAllStringFunc(s, func(m string) string {
					name := m[2 : len(m)-1]
					if v, ok := vars[name]; ok {
						return fmt.Sprint(v)
					}
					if strings.Contains(name, ".") {
						return fmt.Sprint(resolveGetAtt(name))
					}
					return fmt.Sprint(resolveRef(name, tpl))
				})
			},
		},
	}
	j, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := goformation.ParseJSONWithOptions(j, opts)
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	return tpl
}

// TestTemplateParses: goformation parses the template (without the
// properties it does not know) into typed resources of the expected types.
func TestTemplateParses(t *testing.T) {
	tpl := typed(t)
	if tpl.Transform == nil || tpl.Transform.String == nil || *tpl.Transform.String != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform %v, want AWS::Serverless-2016-10-31", tpl.Transform)
	}
	for id, r := range tpl.Resources {
		if r == nil || r.AWSCloudFormationType() == "" {
			t.Errorf("%s: not parsed", id)
		}
	}
	want := []string{"AWS::ECS::Service", "AWS::ECS::TaskDefinition", "AWS::EFS::FileSystem", "AWS::EFS::AccessPoint",
		"AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup",
		"AWS::Serverless::Function", "AWS::Serverless::LayerVersion"}
	var have []string
	for _, r := range tpl.Resources {
		have = append(have, r.AWSCloudFormationType())
	}
	for _, w := range want {
		if !slices.Contains(have, w) {
			t.Errorf("no %s resource", w)
		}
	}
}

// TestReferencesResolve walks the raw template: every Ref, Fn::GetAtt,
// Fn::Sub variable, condition and DependsOn names something that exists,
// a conditional resource is referenced only under its condition, and every
// parameter is used.
func TestReferencesResolve(t *testing.T) {
	doc := raw(t)
	params, resources, conditions := section(doc, "Parameters"), section(doc, "Resources"), section(doc, "Conditions")
	used := map[string]bool{}
	condOf := func(id string) string { s, _ := path(resources[id], "Condition").(string); return s }

	var walk func(where, cond string, v any)
	checkRef := func(where, cond, name string, vars map[string]any) {
		if _, ok := vars[name]; ok {
			return
		}
		if _, ok := params[name]; ok {
			used[name] = true
			return
		}
		if slices.Contains(pseudoParameters, name) {
			return
		}
		if _, ok := resources[name]; !ok {
			t.Errorf("%s: reference to %q: no such parameter, resource or pseudo parameter", where, name)
			return
		}
		if c := condOf(name); c != "" && c != cond {
			t.Errorf("%s: reference to %s, which exists only under condition %s", where, name, c)
		}
	}
	checkGetAtt := func(where, cond, id, attr string) {
		if _, ok := resources[id]; !ok || attr == "" {
			t.Errorf("%s: Fn::GetAtt %s.%s: no such resource or attribute", where, id, attr)
			return
		}
		if c := condOf(id); c != "" && c != cond {
			t.Errorf("%s: Fn::GetAtt %s, which exists only under condition %s", where, id, c)
		}
	}
	checkCondition := func(where string, name any) {
		if _, ok := conditions[fmt.Sprint(name)]; !ok {
			t.Errorf("%s: condition %v: no such condition", where, name)
		}
	}
	subVar := regexp.MustCompile(`\$\{([^}]*)\}`)
	walk = func(where, cond string, v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(where, cond, e)
			}
		case map[string]any:
			if len(v) == 1 {
				for k, arg := range v {
					switch k {
					case "Ref":
						checkRef(where, cond, fmt.Sprint(arg), nil)
						return
					case "Fn::GetAtt":
						var id, attr string
						if a, ok := arg.([]any); ok && len(a) == 2 {
							id, attr = fmt.Sprint(a[0]), fmt.Sprint(a[1])
						} else {
							id, attr, _ = strings.Cut(fmt.Sprint(arg), ".")
						}
						checkGetAtt(where, cond, id, attr)
						return
					case "Fn::Sub":
						s, _ := arg.(string)
						var vars map[string]any
						if a, ok := arg.([]any); ok && len(a) == 2 {
							s, _ = a[0].(string)
							vars, _ = a[1].(map[string]any)
							walk(where, cond, a[1])
						}
						for _, m := range subVar.FindAllStringSubmatch(s, -1) {
							name := m[1]
							if strings.HasPrefix(name, "!") {
								continue // ${!Literal}
							}
							if id, attr, ok := strings.Cut(name, "."); ok {
								checkGetAtt(where, cond, id, attr)
							} else {
								checkRef(where, cond, name, vars)
							}
						}
						return
					case "Fn::If":
						a, _ := arg.([]any)
						if len(a) != 3 {
							t.Errorf("%s: Fn::If needs 3 arguments: %v", where, arg)
							return
						}
						checkCondition(where, a[0])
						walk(where, cond, a[1:])
						return
					case "Condition":
						checkCondition(where, arg)
						return
					}
				}
			}
			for k, e := range v {
				walk(where+"."+k, cond, e)
			}
		}
	}

	for name, c := range conditions {
		walk("Conditions."+name, "", c)
	}
	for id, r := range resources {
		r := r.(map[string]any)
		cond, _ := r["Condition"].(string)
		if cond != "" {
			checkCondition(id, cond)
		}
		switch d := r["DependsOn"].(type) {
		case string:
			checkRef(id+".DependsOn", cond, d, nil)
		case []any:
			for _, e := range d {
				checkRef(id+".DependsOn", cond, fmt.Sprint(e), nil)
			}
		}
		walk(id, cond, r["Properties"])
	}
	for name, o := range section(doc, "Outputs") {
		cond, _ := path(o, "Condition").(string)
		walk("Outputs."+name, cond, o)
	}
	for name := range params {
		if !used[name] {
			t.Errorf("parameter %s is never used", name)
		}
	}
}

func TestLayersAndFunctionAreWired(t *testing.T) {
	doc := raw(t)
	tpl := typed(t)
	targets := makeTargets(t)

	// The layers: built by the Makefile, one per architecture.
	for id, arch := range map[string]string{layerX8664: "x86_64", layerArm64: "arm64"} {
		l, err := tpl.GetServerlessLayerVersionWithName(id)
		if err != nil {
			t.Fatal(err)
		}
		md := l.AWSCloudFormationMetadata
		if md["BuildMethod"] != "makefile" || md["BuildArchitecture"] != arch {
			t.Errorf("%s: Metadata %v, want BuildMethod makefile, BuildArchitecture %s", id, md, arch)
		}
		if l.ContentUri == nil || l.ContentUri.String == nil || *l.ContentUri.String != "." {
			t.Errorf("%s: ContentUri is not the repository root (where the Makefile is)", id)
		}
		if got := path(resource(t, doc, id), "Properties", "CompatibleArchitectures"); !reflect.DeepEqual(got, []any{arch}) {
			t.Errorf("%s: CompatibleArchitectures %v, want [%s]", id, got, arch)
		}
		if !targets["build-"+id] {
			t.Errorf("Makefile: no target build-%s for SAM", id)
		}
	}

	f, err := tpl.GetServerlessFunctionWithName(function)
	if err != nil {
		t.Fatal(err)
	}
	if f.AWSCloudFormationMetadata["BuildMethod"] != "makefile" || !targets["build-"+function] {
		t.Errorf("%s: Metadata %v; Makefile target build-%s: %v", function, f.AWSCloudFormationMetadata, function, targets["build-"+function])
	}
	if f.CodeUri == nil || f.CodeUri.String == nil || *f.CodeUri.String != "." {
		t.Errorf("%s: CodeUri is not the repository root (where the Makefile is)", function)
	}
	if deref(f.Runtime) != "provided.al2023" || deref(f.Handler) != "bootstrap" || !slices.Equal(f.Architectures, []string{"arm64"}) {
		t.Errorf("%s: runtime %s, handler %s, architectures %v; want provided.al2023, bootstrap, [arm64]", function, deref(f.Runtime), deref(f.Handler), f.Architectures)
	}
	// The function runs on arm64, so it takes the arm64 layer.
	if want := []string{refMarker(layerArm64)}; !slices.Equal(f.Layers, want) {
		t.Errorf("%s: Layers %v, want %v", function, f.Layers, want)
	}

	// The extension's settings come from the parameters (GATEWAY, by
	// default, from the load balancer).
	if f.Environment == nil {
		t.Fatalf("%s: no Environment", function)
	}
	env := f.Environment.Variables
	for name, want := range map[string]string{
		"GATEWAY":                 "http://" + getAttMarker("GatewayLoadBalancer", "DNSName") + ":9091",
		"AUTH_SECRET":             paramMarker(secretParam),
		"DISPATCH_MIN_BATCH_SIZE": paramMarker("DispatchMinBatchSize"),
	} {
		if env[name] != want {
			t.Errorf("%s: %s = %q, want %q", function, name, env[name], want)
		}
	}
	gateway := path(resource(t, doc, function), "Properties", "Environment", "Variables", "GATEWAY", "Fn::If")
	if !reflect.DeepEqual(path(gateway, 0), "HasGatewayUrl") || !reflect.DeepEqual(path(gateway, 1), ref("GatewayUrl")) {
		t.Errorf("%s: GATEWAY %v, want the GatewayUrl parameter when it is set", function, gateway)
	}

	// VPC: the subnets parameter and the functions' security group.
	if f.VpcConfig == nil || !slices.Equal(f.VpcConfig.SubnetIds, []string{paramMarker("SubnetIds[0]"), paramMarker("SubnetIds[1]")}) ||
		!slices.Equal(f.VpcConfig.SecurityGroupIds, []string{refMarker("FunctionSecurityGroup")}) {
		t.Errorf("%s: VpcConfig %+v, want the SubnetIds parameter and FunctionSecurityGroup", function, f.VpcConfig)
	}

	// Its only permission of its own: GetSecretValue on the secret.
	if f.Policies == nil || f.Policies.IAMPolicyDocumentArray == nil {
		t.Fatalf("%s: Policies %+v, want one inline policy document", function, f.Policies)
	}
	docs := *f.Policies.IAMPolicyDocumentArray
	var statements []any
	for _, d := range docs {
		statements = append(statements, d.Statement...)
	}
	wantStatement := map[string]any{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": paramMarker(secretParam)}
	if len(statements) != 1 || !reflect.DeepEqual(statements[0], wantStatement) {
		t.Errorf("%s: policy statements %v, want only %v", function, statements, wantStatement)
	}
}

func TestGatewayService(t *testing.T) {
	tpl := typed(t)

	tg, err := tpl.GetElasticLoadBalancingV2TargetGroupWithName("GatewayTargetGroup")
	if err != nil {
		t.Fatal(err)
	}
	if deref(tg.HealthCheckPath) != "/-/ready" || deref(tg.TargetType) != "ip" || tg.Port == nil || *tg.Port != 9091 {
		t.Errorf("target group: health check %s, target type %s, port %d; want /-/ready, ip, 9091", deref(tg.HealthCheckPath), deref(tg.TargetType), deref(tg.Port))
	}
	lb, err := tpl.GetElasticLoadBalancingV2LoadBalancerWithName("GatewayLoadBalancer")
	if err != nil {
		t.Fatal(err)
	}
	if deref(lb.Scheme) != "internal" {
		t.Errorf("load balancer scheme %s, want internal", deref(lb.Scheme))
	}
	ln, err := tpl.GetElasticLoadBalancingV2ListenerWithName("GatewayListener")
	if err != nil {
		t.Fatal(err)
	}
	if ln.LoadBalancerArn != refMarker("GatewayLoadBalancer") || len(ln.DefaultActions) != 1 || deref(ln.DefaultActions[0].TargetGroupArn) != refMarker("GatewayTargetGroup") {
		t.Errorf("listener: %s → %+v, want GatewayLoadBalancer → GatewayTargetGroup", ln.LoadBalancerArn, ln.DefaultActions)
	}

	svc, err := tpl.GetECSServiceWithName("GatewayService")
	if err != nil {
		t.Fatal(err)
	}
	// One task: the gateway does not cluster.
	if svc.DesiredCount == nil || *svc.DesiredCount != 1 || deref(svc.LaunchType) != "FARGATE" {
		t.Errorf("service: desired count %v, launch type %s; want 1, FARGATE", svc.DesiredCount, deref(svc.LaunchType))
	}
	if dc := svc.DeploymentConfiguration; dc == nil || dc.MaximumPercent == nil || *dc.MaximumPercent != 100 {
		t.Errorf("service: a deployment must not run two gateways on one persistence directory: %+v", dc)
	}
	if len(svc.LoadBalancers) != 1 || deref(svc.LoadBalancers[0].TargetGroupArn) != refMarker("GatewayTargetGroup") ||
		deref(svc.LoadBalancers[0].ContainerName) != "gateway" || deref(svc.LoadBalancers[0].ContainerPort) != 9091 {
		t.Errorf("service: load balancers %+v, want gateway:9091 in GatewayTargetGroup", svc.LoadBalancers)
	}
	if deref(svc.TaskDefinition) != refMarker("GatewayTaskDefinition") {
		t.Errorf("service: task definition %s", deref(svc.TaskDefinition))
	}

	td, err := tpl.GetECSTaskDefinitionWithName("GatewayTaskDefinition")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(td.RequiresCompatibilities, []string{"FARGATE"}) || deref(td.NetworkMode) != "awsvpc" {
		t.Errorf("task definition: %v, %s; want FARGATE, awsvpc", td.RequiresCompatibilities, deref(td.NetworkMode))
	}
	var efs bool
	for _, v := range td.Volumes {
		if deref(v.Name) == "data" && v.EFSVolumeConfiguration != nil {
			c := v.EFSVolumeConfiguration
			efs = c.FilesystemId == refMarker("GatewayFileSystem") && c.AuthorizationConfig != nil &&
				deref(c.AuthorizationConfig.AccessPointId) == refMarker("GatewayAccessPoint")
		}
	}
	if !efs {
		t.Errorf("task definition: no volume data on GatewayFileSystem through GatewayAccessPoint: %+v", td.Volumes)
	}
	containers := map[string]int{}
	for i, c := range td.ContainerDefinitions {
		containers[c.Name] = i
	}
	gi, ok := containers["gateway"]
	if !ok {
		t.Fatal("task definition: no container gateway")
	}
	gw := td.ContainerDefinitions[gi]
	for _, flag := range []string{"--web.listen-address=:9091", "--persistence.dir=/data", "--basic-auth-file=/auth/hashes"} {
		if !slices.Contains(gw.Command, flag) {
			t.Errorf("gateway container: command %q lacks %s", gw.Command, flag)
		}
	}
	var mounts []string
	for _, m := range gw.MountPoints {
		mounts = append(mounts, deref(m.SourceVolume)+":"+deref(m.ContainerPath))
	}
	if !slices.Contains(mounts, "data:/data") || !slices.Contains(mounts, "auth:/auth") {
		t.Errorf("gateway container: mounts %v, want data:/data and auth:/auth", mounts)
	}
	if len(gw.PortMappings) != 1 || deref(gw.PortMappings[0].ContainerPort) != 9091 {
		t.Errorf("gateway container: ports %+v, want 9091", gw.PortMappings)
	}
	ii, ok := containers["auth-init"]
	if !ok {
		t.Fatal("task definition: no container auth-init")
	}
	init := td.ContainerDefinitions[ii]
	if len(init.Secrets) != 1 || init.Secrets[0].ValueFrom != paramMarker(secretParam)+":password::" {
		t.Errorf("auth-init: secrets %+v, want the password of %s", init.Secrets, secretParam)
	}
	if len(gw.DependsOnProp) != 1 || deref(gw.DependsOnProp[0].ContainerName) != "auth-init" || deref(gw.DependsOnProp[0].Condition) != "SUCCESS" {
		t.Errorf("gateway container: depends on %+v, want auth-init SUCCESS", gw.DependsOnProp)
	}

	// The execution role reads the secret for ECS, and that secret only.
	role, err := tpl.GetIAMRoleWithName("GatewayExecutionRole")
	if err != nil {
		t.Fatal(err)
	}
	var resources []any
	for _, p := range role.Policies {
		b, _ := json.Marshal(p.PolicyDocument)
		var d struct {
			Statement []struct{ Action, Resource any }
		}
		_ = json.Unmarshal(b, &d)
		for _, s := range d.Statement {
			resources = append(resources, s.Resource)
		}
	}
	if !reflect.DeepEqual(resources, []any{paramMarker(secretParam)}) {
		t.Errorf("execution role: inline policy resources %v, want only %s", resources, secretParam)
	}
}

// makeTargets returns the targets the Makefile defines.
func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(makefilePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	targets := map[string]bool{}
	rule := regexp.MustCompile(`^([A-Za-z0-9_./%-]+(?:\s+[A-Za-z0-9_./%-]+)*)\s*:([^=]|$)`)
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m := rule.FindStringSubmatch(s.Text()); m != nil {
			for _, name := range strings.Fields(m[1]) {
				targets[name] = true
			}
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return targets
}

// TestEveryMakefileBuildHasATarget: every resource SAM builds with the
// Makefile has its build-<LogicalId> target, and every such target a
// resource.
func TestEveryMakefileBuildHasATarget(t *testing.T) {
	doc := raw(t)
	targets := makeTargets(t)
	var built []string
	for id, r := range section(doc, "Resources") {
		if path(r, "Metadata", "BuildMethod") == "makefile" {
			built = append(built, id)
			if !targets["build-"+id] {
				t.Errorf("%s: BuildMethod makefile, but the Makefile has no build-%s", id, id)
			}
		}
	}
	sort.Strings(built)
	if want := []string{function, layerArm64, layerX8664}; !slices.Equal(built, want) {
		t.Errorf("resources built by the Makefile: %v, want %v", built, want)
	}
	for name := range targets {
		if id, ok := strings.CutPrefix(name, "build-"); ok && !slices.Contains(built, id) {
			t.Errorf("Makefile target %s builds no resource of the template", name)
		}
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
