module nautilus/tools/gen-kube-facts

go 1.23

require (
	github.com/google/gnostic-models v0.6.8
	google.golang.org/protobuf v1.35.1
)

require (
	github.com/golang/protobuf v1.5.2 // indirect
	gopkg.in/yaml.v3 v3.0.0-20210107192922-496545a6307b // indirect
)
