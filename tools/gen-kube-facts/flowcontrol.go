package main

import (
	"encoding/json"
	"fmt"
	"os"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap"
)

// apfBootstrap is core/src/controllers/apf_bootstrap.json: the API priority and fairness
// objects kube-apiserver creates at start (k8s.io/apiserver's bootstrap package), mandatory
// first, each as kube-apiserver stores it before the server fields are set.
func apfBootstrap() ([]byte, error) {
	var mandatory, suggested []runtime.Object
	for _, pl := range bootstrap.MandatoryPriorityLevelConfigurations {
		mandatory = append(mandatory, withKind(pl, "PriorityLevelConfiguration"))
	}
	for _, fs := range bootstrap.MandatoryFlowSchemas {
		mandatory = append(mandatory, withKind(fs, "FlowSchema"))
	}
	for _, pl := range bootstrap.SuggestedPriorityLevelConfigurations {
		suggested = append(suggested, withKind(pl, "PriorityLevelConfiguration"))
	}
	for _, fs := range bootstrap.SuggestedFlowSchemas {
		suggested = append(suggested, withKind(fs, "FlowSchema"))
	}
	doc := map[string][]any{}
	for name, list := range map[string][]runtime.Object{"mandatory": mandatory, "suggested": suggested} {
		for _, o := range list {
			raw, err := json.Marshal(o)
			if err != nil {
				return nil, err
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, err
			}
			// Server fields (creationTimestamp: null) and the empty status are set on create.
			delete(m["metadata"].(map[string]any), "creationTimestamp")
			delete(m, "status")
			doc[name] = append(doc[name], m)
		}
	}
	out, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "apf_bootstrap.json: %d mandatory, %d suggested objects\n", len(mandatory), len(suggested))
	return append(out, '\n'), nil
}

func withKind(o runtime.Object, kind string) runtime.Object {
	o = o.DeepCopyObject()
	o.GetObjectKind().SetGroupVersionKind(flowcontrolv1.SchemeGroupVersion.WithKind(kind))
	return o
}
