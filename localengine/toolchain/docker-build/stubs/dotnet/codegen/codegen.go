// Package codegen stands in for pulumi-language-dotnet's codegen, which the Go module proxy
// does not serve. The docker-build provider uses only this type, for schema metadata.
package codegen

type CSharpPackageInfo struct {
	RespectSchemaVersion bool              `json:"respectSchemaVersion,omitempty"`
	PackageReferences    map[string]string `json:"packageReferences,omitempty"`
}
