module nautilus/tools/gen-kube-facts

go 1.23
