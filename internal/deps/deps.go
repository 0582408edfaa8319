// Package deps pins dependencies during bootstrap; removed once real code imports them.
package deps

import (
	_ "github.com/alecthomas/kingpin/v2"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/push"
	_ "github.com/prometheus/client_model/go"
	_ "github.com/prometheus/common/expfmt"
	_ "github.com/prometheus/exporter-toolkit/web"
	_ "golang.org/x/crypto/bcrypt"
	_ "google.golang.org/protobuf/proto"
)
