package e2e

// The libraries and official clients the black-box tests check the binary
// against. Importing them here keeps them in go.mod while tests that use
// them are added in separate files.
import (
	_ "github.com/anthropics/anthropic-sdk-go/v2"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/openai/openai-go/v3"
	_ "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	_ "google.golang.org/protobuf/encoding/protojson"
)
