// The pulumi-kubernetes provider's main package, as in its cmd/pulumi-resource-kubernetes:
// the build copies schema.json and terraform-mapping.json from the module and runs its
// generate.go (VERSION=4.25.0) to write the two *-embed.json files embedded here.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
