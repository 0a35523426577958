// Drives a cluster the way an operator built on client-go does: server-side apply with typed
// apply configurations and field ownership, finalizers added with the JSON patch
// controller-runtime sends, a metadata-only informer, and dry runs. Exits non-zero with a message
// naming the first mismatch.
//
//	clientgo KUBECONFIG
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

const ns = "default"

// How long one informer event may take to arrive before the run fails.
const eventLimit = 30 * time.Second

func main() {
	if len(os.Args) != 2 {
		fail("usage: clientgo KUBECONFIG")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Args[1])
	check(err, "load kubeconfig")
	cfg.UserAgent = "nautilus-clientgo-test"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(cfg)
	check(err, "typed client")
	md, err := metadata.NewForConfig(cfg)
	check(err, "metadata client")

	serverSideApply(ctx, cs)
	finalizers(ctx, cs)
	metadataInformer(ctx, cs, md)
	dryRun(ctx, cs)
	fmt.Println("clientgo: OK")
}

// (1) Server-side apply: ownership, conflicts, force, and removal of fields no longer applied.
func serverSideApply(ctx context.Context, cs *kubernetes.Clientset) {
	cms := cs.CoreV1().ConfigMaps(ns)
	applyA := corev1ac.ConfigMap("ssa", ns).
		WithLabels(map[string]string{"app": "demo"}).
		WithData(map[string]string{"a": "1", "b": "2", "c": "3"})
	cm, err := cms.Apply(ctx, applyA, metav1.ApplyOptions{FieldManager: "op-a"})
	check(err, "op-a applies ssa")
	wantData(cm, map[string]string{"a": "1", "b": "2", "c": "3"}, "after op-a's apply")
	wantOwners(cm, map[string]string{
		"op-a": `{"f:data":{"f:a":{},"f:b":{},"f:c":{}},"f:metadata":{"f:labels":{"f:app":{}}}}`,
	}, "after op-a's apply")

	applyB := corev1ac.ConfigMap("ssa", ns).WithData(map[string]string{"a": "9"})
	_, err = cms.Apply(ctx, applyB, metav1.ApplyOptions{FieldManager: "op-b"})
	if err == nil {
		fail("op-b's apply of data.a (owned by op-a) succeeded; want a 409 Conflict")
	}
	if !apierrors.IsConflict(err) {
		fail("op-b's conflicting apply: want a 409 Conflict, got %v", err)
	}
	causes := statusCauses(err)
	if len(causes) != 1 || causes[0].Type != metav1.CauseTypeFieldManagerConflict ||
		causes[0].Field != ".data.a" || !strings.Contains(causes[0].Message, `"op-a"`) {
		fail("op-b's conflict: want one FieldManagerConflict cause on .data.a naming \"op-a\", got %+v (%v)", causes, err)
	}
	if !strings.Contains(err.Error(), `conflict with "op-a"`) {
		fail("op-b's conflict message does not name op-a: %v", err)
	}
	cm, err = cms.Get(ctx, "ssa", metav1.GetOptions{})
	check(err, "get ssa after the refused apply")
	wantData(cm, map[string]string{"a": "1", "b": "2", "c": "3"}, "after the refused apply")

	cm, err = cms.Apply(ctx, applyB, metav1.ApplyOptions{FieldManager: "op-b", Force: true})
	check(err, "op-b force-applies data.a")
	wantData(cm, map[string]string{"a": "9", "b": "2", "c": "3"}, "after op-b's forced apply")
	wantOwners(cm, map[string]string{
		"op-a": `{"f:data":{"f:b":{},"f:c":{}},"f:metadata":{"f:labels":{"f:app":{}}}}`,
		"op-b": `{"f:data":{"f:a":{}}}`,
	}, "after op-b's forced apply")

	// op-a stops applying c (its alone: removed) and a (op-b's now: kept).
	applyA = corev1ac.ConfigMap("ssa", ns).
		WithLabels(map[string]string{"app": "demo"}).
		WithData(map[string]string{"b": "2"})
	cm, err = cms.Apply(ctx, applyA, metav1.ApplyOptions{FieldManager: "op-a"})
	check(err, "op-a applies without c")
	wantData(cm, map[string]string{"a": "9", "b": "2"}, "after op-a stopped applying c")
	wantOwners(cm, map[string]string{
		"op-a": `{"f:data":{"f:b":{}},"f:metadata":{"f:labels":{"f:app":{}}}}`,
		"op-b": `{"f:data":{"f:a":{}}}`,
	}, "after op-a stopped applying c")
	check(cms.Delete(ctx, "ssa", metav1.DeleteOptions{}), "delete ssa")
	fmt.Println("clientgo: server-side apply ownership, conflict, force and removal OK")
}

// (2) Finalizers added with the JSON patch controller-runtime's helper sends, then a delete that
// waits for them.
func finalizers(ctx context.Context, cs *kubernetes.Clientset) {
	cms := cs.CoreV1().ConfigMaps(ns)
	_, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "fin"},
		Data:       map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	check(err, "create fin")
	add := []byte(`[{"op":"test","path":"/metadata/finalizers","value":null},` +
		`{"op":"add","path":"/metadata/finalizers","value":["x/y"]}]`)
	cm, err := cms.Patch(ctx, "fin", types.JSONPatchType, add, metav1.PatchOptions{})
	check(err, "JSON patch adding finalizer x/y to an object without finalizers")
	if !reflect.DeepEqual(cm.Finalizers, []string{"x/y"}) {
		fail("finalizers after the JSON patch: want [x/y], got %v", cm.Finalizers)
	}
	// The same patch again: the test op now fails, so the finalizer list is not clobbered.
	_, err = cms.Patch(ctx, "fin", types.JSONPatchType, add, metav1.PatchOptions{})
	if code := statusCode(err); code != 422 {
		fail("JSON patch testing finalizers == null on an object with finalizers: want 422, got %v", err)
	}

	check(cms.Delete(ctx, "fin", metav1.DeleteOptions{}), "delete fin")
	cm, err = cms.Get(ctx, "fin", metav1.GetOptions{})
	check(err, "get fin after delete (it has a finalizer, so it must still exist)")
	if cm.DeletionTimestamp == nil {
		fail("fin after delete: want a deletionTimestamp (Terminating), got none")
	}
	if !reflect.DeepEqual(cm.Finalizers, []string{"x/y"}) {
		fail("fin after delete: want finalizers [x/y], got %v", cm.Finalizers)
	}
	remove := []byte(`[{"op":"test","path":"/metadata/finalizers","value":["x/y"]},` +
		`{"op":"remove","path":"/metadata/finalizers"}]`)
	_, err = cms.Patch(ctx, "fin", types.JSONPatchType, remove, metav1.PatchOptions{})
	check(err, "JSON patch removing the last finalizer")
	_, err = cms.Get(ctx, "fin", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		fail("fin after its last finalizer was removed: want NotFound, got %v", err)
	}
	fmt.Println("clientgo: finalizers OK")
}

type event struct {
	kind     string
	name     string
	rv       string
	oldRV    string
	typeName string
}

func partial(obj interface{}) (*metav1.PartialObjectMetadata, string) {
	p, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return nil, fmt.Sprintf("%T", obj)
	}
	return p, "*v1.PartialObjectMetadata"
}

// (3) A metadata-only informer on configmaps: the initial list, an add, an update and a delete,
// each as *metav1.PartialObjectMetadata with the object's name and resourceVersion.
func metadataInformer(ctx context.Context, cs *kubernetes.Clientset, md metadata.Interface) {
	cms := cs.CoreV1().ConfigMaps(ns)
	const selector = "clientgo-test=watch"
	labels := map[string]string{"clientgo-test": "watch"}
	pre, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "watched-before", Labels: labels},
	}, metav1.CreateOptions{})
	check(err, "create watched-before")

	events := make(chan event, 64)
	send := func(e event) {
		select {
		case events <- e:
		default:
			fail("informer: more than 64 unread events")
		}
	}
	factory := metadatainformer.NewFilteredSharedInformerFactory(md, 0, ns,
		func(o *metav1.ListOptions) { o.LabelSelector = selector })
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	informer := factory.ForResource(gvr).Informer()
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) {
			p, t := partial(obj)
			e := event{kind: "add", typeName: t}
			if p != nil {
				e.name, e.rv = p.Name, p.ResourceVersion
			}
			send(e)
		},
		UpdateFunc: func(oldObj, newObj interface{}) {
			p, t := partial(newObj)
			o, ot := partial(oldObj)
			e := event{kind: "update", typeName: t}
			if ot != t {
				e.typeName = t + "/" + ot
			}
			if p != nil && o != nil {
				e.name, e.rv, e.oldRV = p.Name, p.ResourceVersion, o.ResourceVersion
			}
			send(e)
		},
		DeleteFunc: func(obj interface{}) {
			p, t := partial(obj)
			e := event{kind: "delete", typeName: t}
			if p != nil {
				e.name, e.rv = p.Name, p.ResourceVersion
			}
			send(e)
		},
	})
	check(err, "add informer handler")
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	synced := factory.WaitForCacheSync(stop)
	if !synced[gvr] {
		fail("metadata informer on configmaps never synced")
	}
	expect := func(want event, what string) event {
		select {
		case got := <-events:
			if got.typeName != "*v1.PartialObjectMetadata" {
				fail("informer %s: want *v1.PartialObjectMetadata, got %s", what, got.typeName)
			}
			if got.kind != want.kind || got.name != want.name ||
				(want.rv != "" && got.rv != want.rv) || (want.oldRV != "" && got.oldRV != want.oldRV) {
				fail("informer %s: want %+v, got %+v", what, want, got)
			}
			return got
		case <-time.After(eventLimit):
			fail("informer %s: no event in %s (want %+v)", what, eventLimit, want)
		}
		return event{}
	}
	expect(event{kind: "add", name: "watched-before", rv: pre.ResourceVersion}, "initial list")

	created, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "watched", Labels: labels},
		Data:       map[string]string{"k": "1"},
	}, metav1.CreateOptions{})
	check(err, "create watched")
	expect(event{kind: "add", name: "watched", rv: created.ResourceVersion}, "add")

	created.Data["k"] = "2"
	updated, err := cms.Update(ctx, created, metav1.UpdateOptions{})
	check(err, "update watched")
	if updated.ResourceVersion == created.ResourceVersion {
		fail("update of watched kept resourceVersion %s", created.ResourceVersion)
	}
	expect(event{kind: "update", name: "watched", rv: updated.ResourceVersion,
		oldRV: created.ResourceVersion}, "update")

	check(cms.Delete(ctx, "watched", metav1.DeleteOptions{}), "delete watched")
	deleted := expect(event{kind: "delete", name: "watched"}, "delete")
	if deleted.rv == "" || deleted.rv == created.ResourceVersion || deleted.rv == updated.ResourceVersion {
		fail("informer delete: want the deletion's resourceVersion (after %s), got %q",
			updated.ResourceVersion, deleted.rv)
	}
	// The informer's store holds metadata only, under the same keys a typed informer uses.
	item, exists, err := informer.GetStore().GetByKey(ns + "/watched-before")
	check(err, "store lookup")
	if !exists {
		fail("informer store has no %s/watched-before", ns)
	}
	if _, t := partial(item); t != "*v1.PartialObjectMetadata" {
		fail("informer store item: want *v1.PartialObjectMetadata, got %s", t)
	}
	if _, exists, _ = informer.GetStore().GetByKey(ns + "/watched"); exists {
		fail("informer store still holds %s/watched after its delete event", ns)
	}
	check(cms.Delete(ctx, "watched-before", metav1.DeleteOptions{}), "delete watched-before")
	expect(event{kind: "delete", name: "watched-before"}, "delete of watched-before")
	select {
	case extra := <-events:
		fail("informer: unexpected event %+v", extra)
	default:
	}
	fmt.Println("clientgo: metadata-only informer OK")
}

// (4) Dry runs answer with the object and persist nothing.
func dryRun(ctx context.Context, cs *kubernetes.Clientset) {
	cms := cs.CoreV1().ConfigMaps(ns)
	dry := []string{metav1.DryRunAll}
	cm, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "dry-create"},
		Data:       map[string]string{"k": "v"},
	}, metav1.CreateOptions{DryRun: dry})
	check(err, "dry-run create")
	if cm.Name != "dry-create" || cm.Data["k"] != "v" {
		fail("dry-run create answered %s %v; want dry-create {k: v}", cm.Name, cm.Data)
	}
	wantNotFound(ctx, cs, "dry-create", "after a dry-run create")

	apply := corev1ac.ConfigMap("dry-apply", ns).WithData(map[string]string{"k": "v"})
	cm, err = cms.Apply(ctx, apply, metav1.ApplyOptions{FieldManager: "op-a", DryRun: dry})
	check(err, "dry-run apply")
	if cm.Name != "dry-apply" || cm.Data["k"] != "v" {
		fail("dry-run apply answered %s %v; want dry-apply {k: v}", cm.Name, cm.Data)
	}
	wantOwners(cm, map[string]string{"op-a": `{"f:data":{"f:k":{}}}`}, "dry-run apply's answer")
	wantNotFound(ctx, cs, "dry-apply", "after a dry-run apply")

	// On an existing object: a dry-run apply and a dry-run delete leave it as it was.
	kept, err := cms.Apply(ctx, apply, metav1.ApplyOptions{FieldManager: "op-a"})
	check(err, "apply dry-apply for real")
	changed := corev1ac.ConfigMap("dry-apply", ns).WithData(map[string]string{"k": "changed"})
	cm, err = cms.Apply(ctx, changed, metav1.ApplyOptions{FieldManager: "op-a", DryRun: dry})
	check(err, "dry-run apply over an existing object")
	wantData(cm, map[string]string{"k": "changed"}, "dry-run apply's answer over an existing object")
	check(cms.Delete(ctx, "dry-apply", metav1.DeleteOptions{DryRun: dry}), "dry-run delete")
	cm, err = cms.Get(ctx, "dry-apply", metav1.GetOptions{})
	check(err, "get dry-apply after a dry-run apply and a dry-run delete")
	wantData(cm, map[string]string{"k": "v"}, "after a dry-run apply and delete")
	if cm.ResourceVersion != kept.ResourceVersion || cm.DeletionTimestamp != nil {
		fail("dry runs changed dry-apply: resourceVersion %s -> %s, deletionTimestamp %v",
			kept.ResourceVersion, cm.ResourceVersion, cm.DeletionTimestamp)
	}
	check(cms.Delete(ctx, "dry-apply", metav1.DeleteOptions{}), "delete dry-apply")
	fmt.Println("clientgo: dry run OK")
}

func wantNotFound(ctx context.Context, cs *kubernetes.Clientset, name, when string) {
	_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		fail("get %s %s: want NotFound, got %v", name, when, err)
	}
}

func wantData(cm *corev1.ConfigMap, want map[string]string, when string) {
	if !reflect.DeepEqual(cm.Data, want) {
		fail("data of %s %s: want %v, got %v", cm.Name, when, want, cm.Data)
	}
}

// wantOwners checks managedFields holds exactly one Apply entry per manager in want (manager ->
// fieldsV1 JSON) and nothing else.
func wantOwners(cm *corev1.ConfigMap, want map[string]string, when string) {
	got := map[string]string{}
	for _, e := range cm.ManagedFields {
		if e.Operation != metav1.ManagedFieldsOperationApply {
			fail("managedFields of %s %s: %s has operation %s, want Apply (all: %s)",
				cm.Name, when, e.Manager, e.Operation, dump(cm.ManagedFields))
		}
		if _, dup := got[e.Manager]; dup {
			fail("managedFields of %s %s: two entries for %s: %s", cm.Name, when, e.Manager, dump(cm.ManagedFields))
		}
		if e.FieldsType != "FieldsV1" || e.FieldsV1 == nil || e.APIVersion != "v1" {
			fail("managedFields of %s %s: entry %s is not a v1 FieldsV1 entry: %s", cm.Name, when, e.Manager, dump(e))
		}
		got[e.Manager] = string(e.FieldsV1.Raw)
	}
	if len(got) != len(want) {
		fail("managedFields of %s %s: want managers %v, got %s", cm.Name, when, keys(want), dump(cm.ManagedFields))
	}
	for manager, fields := range want {
		have, ok := got[manager]
		if !ok || !sameJSON(have, fields) {
			fail("managedFields of %s %s: %s should own exactly %s, got %s", cm.Name, when, manager, fields, dump(cm.ManagedFields))
		}
	}
}

func sameJSON(a, b string) bool {
	var x, y interface{}
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil &&
		reflect.DeepEqual(x, y)
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func statusCauses(err error) []metav1.StatusCause {
	if s, ok := err.(apierrors.APIStatus); ok && s.Status().Details != nil {
		return s.Status().Details.Causes
	}
	return nil
}

func statusCode(err error) int32 {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Code
	}
	return 0
}

func dump(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

func check(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "clientgo: FAIL: "+format+"\n", args...)
	os.Exit(1)
}
