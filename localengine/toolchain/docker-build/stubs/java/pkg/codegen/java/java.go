// Package java stands in for pulumi-java's codegen, which the Go module proxy does not serve.
// The docker-build provider uses only this type, for schema metadata.
package java

type PackageInfo struct {
	BuildFiles                      string            `json:"buildFiles,omitempty"`
	GradleNexusPublishPluginVersion string            `json:"gradleNexusPublishPluginVersion,omitempty"`
	Dependencies                    map[string]string `json:"dependencies,omitempty"`
}
