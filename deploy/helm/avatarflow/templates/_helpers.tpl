{{/* ---------------------------------------------------------------- names and labels */}}

{{- define "avatarflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "avatarflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "avatarflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels shared by every object. */}}
{{- define "avatarflow.labels" -}}
helm.sh/chart: {{ include "avatarflow.chart" . }}
app.kubernetes.io/name: {{ include "avatarflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: avatarflow
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: dict "root" $ "component" "ingest" */}}
{{- define "avatarflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "avatarflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "avatarflow.componentLabels" -}}
{{ include "avatarflow.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* ---------------------------------------------------------------- service catalogue */}}

{{/* The five services, in pipeline order. */}}
{{- define "avatarflow.serviceNames" -}}
ingest validator matting animator notifier
{{- end -}}

{{/* Services with a user-facing HTTP API (Service port "http", Ingress, JWT). */}}
{{- define "avatarflow.httpServices" -}}
ingest validator notifier
{{- end -}}

{{/* Services whose load is their consumer group's lag (KEDA kafka trigger). */}}
{{- define "avatarflow.lagScaledServices" -}}
validator matting animator
{{- end -}}

{{/* Image of a service: dict "root" $ "name" "animator" "svc" $svcValues */}}
{{- define "avatarflow.image" -}}
{{- $img := .svc.image -}}
{{- if and (eq .name "animator") .svc.gpu.enabled -}}
{{- $img = .svc.gpu.image -}}
{{- end -}}
{{- $tag := $img.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" .root.Values.image.registry $img.repository $tag -}}
{{- end -}}

{{- define "avatarflow.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- printf "%s-%s" (include "avatarflow.fullname" .root) .component -}}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- topics and partitions */}}

{{/* The largest replica count a consumer service may reach in the chosen autoscaling mode. */}}
{{- define "avatarflow.maxReplicas" -}}
{{- $svc := .svc -}}
{{- if and (ne .root.Values.autoscaling.mode "none") $svc.autoscaling -}}
{{- max (int $svc.autoscaling.maxReplicas) (int $svc.autoscaling.minReplicas) -}}
{{- else -}}
{{- int $svc.replicas -}}
{{- end -}}
{{- end -}}

{{/* Partition count of every topic: the configured value, or (0) the largest consumer replica bound. */}}
{{- define "avatarflow.partitions" -}}
{{- $configured := int .Values.kafka.topics.partitions -}}
{{- if gt $configured 0 -}}
{{- $configured -}}
{{- else -}}
{{- $largest := 1 -}}
{{- range $name := splitList " " (include "avatarflow.lagScaledServices" .) -}}
{{- $svc := index $.Values.services $name -}}
{{- if $svc.enabled -}}
{{- $largest = max $largest (int (include "avatarflow.maxReplicas" (dict "root" $ "svc" $svc))) -}}
{{- end -}}
{{- end -}}
{{- $largest -}}
{{- end -}}
{{- end -}}

{{/* Cross-field rules JSON Schema cannot express; rendered (and so enforced) by configmap.yaml. */}}
{{- define "avatarflow.validate" -}}
{{- $partitions := int (include "avatarflow.partitions" .) -}}
{{- range $name := splitList " " (include "avatarflow.lagScaledServices" .) -}}
{{- $svc := index $.Values.services $name -}}
{{- if $svc.enabled -}}
{{- $bound := int (include "avatarflow.maxReplicas" (dict "root" $ "svc" $svc)) -}}
{{- if gt $bound $partitions -}}
{{- fail (printf "services.%s: up to %d replicas but topic %s has %d partitions; consumers beyond the partition count sit idle. Lower services.%s.autoscaling.maxReplicas/replicas or raise kafka.topics.partitions." $name $bound $svc.consumer.topic $partitions $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $name := splitList " " (include "avatarflow.serviceNames" .) -}}
{{- $svc := index $.Values.services $name -}}
{{- if and $svc.enabled $svc.autoscaling (gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) -}}
{{- fail (printf "services.%s.autoscaling: minReplicas %d > maxReplicas %d" $name (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- $animator := .Values.services.animator -}}
{{- if and $animator.gpu.enabled (eq .Values.config.animator.executionProvider "cpu") -}}
{{- fail "services.animator.gpu.enabled is true but config.animator.executionProvider is cpu: the GPU would sit idle" -}}
{{- end -}}
{{- if and (not $animator.gpu.enabled) (eq .Values.config.animator.executionProvider "cuda") -}}
{{- fail "config.animator.executionProvider is cuda but services.animator.gpu.enabled is false: the CPU image cannot run CUDA" -}}
{{- end -}}
{{- if and .Values.services.notifier.enabled (not .Values.secrets.database.existingSecret) -}}
{{- fail "secrets.database.existingSecret is required: the notifier needs AVATARFLOW_DATABASE_URL" -}}
{{- end -}}
{{- if and (or .Values.services.ingest.enabled .Values.services.validator.enabled .Values.services.notifier.enabled) (not .Values.secrets.jwt.existingSecret) -}}
{{- fail "secrets.jwt.existingSecret is required: the HTTP services verify editor tokens with AVATARFLOW_JWT_SECRET" -}}
{{- end -}}
{{- $topics := .Values.kafka.topics -}}
{{- if gt (int $topics.minInsyncReplicas) (int $topics.replicationFactor) -}}
{{- fail (printf "kafka.topics.minInsyncReplicas %d > replicationFactor %d: no acks=all write could ever succeed" (int $topics.minInsyncReplicas) (int $topics.replicationFactor)) -}}
{{- end -}}
{{- end -}}

{{/* Every topic the chart provisions (avatarflow_contracts.topics.ALL_TOPICS; a deploy test keeps them equal). */}}
{{- define "avatarflow.topicNames" -}}
{{- $groups := list "avatarflow-validator" "avatarflow-matting" "avatarflow-animator" "avatarflow-notifier" -}}
{{- $names := list "image.uploaded" "face.validated" "face.rejected" "avatar.matted" "avatar.rendered" "avatar.failed" -}}
{{- range $group := $groups -}}
{{- $names = append $names (printf "%s.retry" $group) -}}
{{- $names = append $names (printf "%s.dlq" $group) -}}
{{- end -}}
{{- join " " (append $names "avatarflow.dlq-replays") -}}
{{- end -}}

{{/* retention.ms of one topic: dead-letter topics keep their records longer. */}}
{{- define "avatarflow.topicRetentionMs" -}}
{{- $p := .root.Values.kafka.topics.provisioning -}}
{{- if or (eq .topic "avatarflow.dlq-replays") (hasSuffix ".dlq" .topic) -}}
{{- $p.deadLetterRetentionMs | int64 -}}
{{- else -}}
{{- $p.retentionMs | int64 -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- configuration */}}

{{/* Non-secret settings shared by every service, as a YAML map (ConfigMap data and hook Job env). */}}
{{- define "avatarflow.commonConfig" -}}
{{- $c := .Values.config -}}
AVATARFLOW_LOG_LEVEL: {{ $c.logLevel | quote }}
AVATARFLOW_LOG_JSON: {{ $c.logJson | toString | quote }}
AVATARFLOW_KAFKA_BOOTSTRAP_SERVERS: {{ $c.kafka.bootstrapServers | quote }}
AVATARFLOW_KAFKA_IDEMPOTENT_PRODUCER: {{ $c.kafka.idempotentProducer | toString | quote }}
AVATARFLOW_KAFKA_SESSION_TIMEOUT_MS: {{ $c.kafka.sessionTimeoutMs | int | toString | quote }}
AVATARFLOW_KAFKA_MAX_REQUEST_BYTES: {{ $c.kafka.maxRequestBytes | int | toString | quote }}
AVATARFLOW_KAFKA_HEARTBEAT_INTERVAL_MS: {{ $c.kafka.heartbeatIntervalMs | int | toString | quote }}
AVATARFLOW_KAFKA_MAX_POLL_INTERVAL_MS: {{ $c.kafka.maxPollIntervalMs | int | toString | quote }}
{{- with $c.s3.endpointUrl }}
AVATARFLOW_S3_ENDPOINT_URL: {{ . | quote }}
{{- end }}
AVATARFLOW_S3_REGION: {{ $c.s3.region | quote }}
AVATARFLOW_S3_BUCKET: {{ $c.s3.bucket | quote }}
AVATARFLOW_S3_CONNECT_TIMEOUT_S: {{ $c.s3.connectTimeoutS | toString | quote }}
AVATARFLOW_S3_READ_TIMEOUT_S: {{ $c.s3.readTimeoutS | toString | quote }}
AVATARFLOW_HTTP_HOST: "0.0.0.0"
AVATARFLOW_HTTP_PORT: "8080"
AVATARFLOW_HTTP_API_DOCS: {{ $c.http.apiDocs | toString | quote }}
AVATARFLOW_HTTP_HEADER_TIMEOUT_S: {{ $c.http.headerTimeoutS | toString | quote }}
AVATARFLOW_HTTP_BODY_IDLE_TIMEOUT_S: {{ $c.http.bodyIdleTimeoutS | toString | quote }}
AVATARFLOW_HTTP_BODY_TIMEOUT_S: {{ $c.http.bodyTimeoutS | toString | quote }}
AVATARFLOW_HTTP_MAX_BODY_BYTES: {{ $c.http.maxBodyBytes | int | toString | quote }}
AVATARFLOW_MAX_ATTEMPTS: {{ $c.retry.maxAttempts | int | toString | quote }}
AVATARFLOW_RETRY_BACKOFF_INITIAL_S: {{ $c.retry.backoffInitialS | toString | quote }}
AVATARFLOW_RETRY_BACKOFF_MAX_S: {{ $c.retry.backoffMaxS | toString | quote }}
ORT_DISABLE_TELEMETRY: "1"
HF_HUB_DISABLE_TELEMETRY: "1"
DO_NOT_TRACK: "1"
HOME: /tmp
XDG_CACHE_HOME: /var/cache/avatarflow
MPLCONFIGDIR: /var/cache/avatarflow/matplotlib
{{- with $c.tracing }}
OTEL_TRACES_EXPORTER: {{ .exporter | quote }}
{{- if ne .exporter "none" }}
{{- with .otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
OTEL_TRACES_SAMPLER: {{ .sampler | quote }}
{{- with .samplerArg }}
OTEL_TRACES_SAMPLER_ARG: {{ . | toString | quote }}
{{- end }}
{{- with .resourceAttributes }}
OTEL_RESOURCE_ATTRIBUTES: {{ . | quote }}
{{- end }}
{{- range $k, $v := .env }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- range $k, $v := $c.extraEnv }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* Settings of one service on top of the common ones: dict "root" $ "name" "ingest" "svc" $svc */}}
{{- define "avatarflow.serviceConfig" -}}
{{- $c := .root.Values.config -}}
AVATARFLOW_SERVICE_NAME: {{ .name | quote }}
{{- with .svc.terminationGracePeriodSeconds }}
{{- /* The in-flight record (a render) may use the pod's grace period, less 5 s for the exit itself. */}}
AVATARFLOW_SHUTDOWN_GRACE_S: {{ max 2 (sub (int .) 5) | toString | quote }}
{{- end }}
{{- if has .name (splitList " " (include "avatarflow.httpServices" .root)) }}
AVATARFLOW_JWT_ISSUER: {{ $c.jwt.issuer | quote }}
AVATARFLOW_JWT_AUDIENCE: {{ $c.jwt.audience | quote }}
{{- end }}
{{- if has .name (list "ingest" "validator") }}
AVATARFLOW_INGEST_MAX_UPLOAD_BYTES: {{ $c.ingest.maxUploadBytes | int | toString | quote }}
AVATARFLOW_INGEST_MAX_PIXELS: {{ $c.ingest.maxPixels | int | toString | quote }}
AVATARFLOW_INGEST_MAX_SIDE: {{ $c.ingest.maxSide | int | toString | quote }}
{{- end }}
{{- if eq .name "ingest" }}
AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE: {{ $c.ingest.rateLimitPerMinute | int | toString | quote }}
AVATARFLOW_INGEST_PRESIGNED_EXPIRY_S: {{ $c.ingest.presignedExpiryS | int | toString | quote }}
AVATARFLOW_INGEST_IDEMPOTENCY_WINDOW_S: {{ $c.ingest.idempotencyWindowS | int | toString | quote }}
AVATARFLOW_INGEST_PUBLISH_ATTEMPTS: {{ $c.ingest.publishAttempts | int | toString | quote }}
AVATARFLOW_INGEST_STATUS_BASE_URL: {{ $c.ingest.statusBaseUrl | quote }}
AVATARFLOW_INGEST_CORS_ORIGINS: {{ $c.ingest.corsOrigins | quote }}
{{- end }}
{{- if has .name (list "notifier" "migrate") }}
AVATARFLOW_NOTIFIER_INGEST_PUBLIC_URL: {{ $c.notifier.ingestPublicUrl | quote }}
AVATARFLOW_NOTIFIER_SUPPORT_URL: {{ $c.notifier.supportUrl | quote }}
AVATARFLOW_NOTIFIER_SSE_POLL_INTERVAL_S: {{ $c.notifier.ssePollIntervalS | toString | quote }}
AVATARFLOW_NOTIFIER_SSE_PING_INTERVAL_S: {{ $c.notifier.ssePingIntervalS | toString | quote }}
AVATARFLOW_NOTIFIER_CATALOGUE_PREFIX: {{ $c.notifier.cataloguePrefix | quote }}
AVATARFLOW_NOTIFIER_CATALOGUE_CACHE_S: {{ $c.notifier.catalogueCacheS | toString | quote }}
AVATARFLOW_NOTIFIER_MIGRATE_ON_START: {{ $c.notifier.migrateOnStart | toString | quote }}
AVATARFLOW_NOTIFIER_SEED_CATALOGUE: {{ $c.notifier.seedCatalogue | toString | quote }}
AVATARFLOW_NOTIFIER_APPLIED_EVENTS_RETENTION_DAYS: {{ $c.notifier.appliedEventsRetentionDays | toString | quote }}
AVATARFLOW_NOTIFIER_PRUNE_INTERVAL_S: {{ $c.notifier.pruneIntervalS | toString | quote }}
{{- end }}
{{- if eq .name "matting" }}
# The image warms this cache at build time; an init container copies it into the emptyDir.
NUMBA_CACHE_DIR: /var/cache/avatarflow/numba
AVATARFLOW_NUMBA_CACHE_DIR: /var/cache/avatarflow/numba
NUMBA_CPU_NAME: generic
{{- end }}
{{- if eq .name "animator" }}
AVATARFLOW_ANIMATOR_EXECUTION_PROVIDER: {{ $c.animator.executionProvider | quote }}
AVATARFLOW_ANIMATOR_MAX_IN_FLIGHT: {{ $c.animator.maxInFlight | int | toString | quote }}
AVATARFLOW_ANIMATOR_TTS: {{ $c.animator.tts | quote }}
AVATARFLOW_ANIMATOR_TTS_VOICE: {{ $c.animator.ttsVoice | quote }}
AVATARFLOW_ANIMATOR_SHARE_BACKGROUND: {{ $c.animator.shareBackground | quote }}
{{- end }}
{{- range $k, $v := .svc.settings }}
AVATARFLOW_{{ upper $k }}: {{ $v | toString | quote }}
{{- end }}
{{- range $k, $v := .svc.extraEnv }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* Credentials from existing Secrets, as container env entries: dict "root" $ "name" "ingest" */}}
{{- define "avatarflow.secretEnv" -}}
{{- $s := .root.Values.secrets -}}
{{- if and $s.s3.existingSecret (has .name (splitList " " (include "avatarflow.serviceNames" .root))) }}
- name: AVATARFLOW_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: { name: {{ $s.s3.existingSecret | quote }}, key: {{ $s.s3.accessKeyIdKey | quote }} }
- name: AVATARFLOW_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: { name: {{ $s.s3.existingSecret | quote }}, key: {{ $s.s3.secretAccessKeyKey | quote }} }
{{- end }}
{{- if has .name (splitList " " (include "avatarflow.httpServices" .root)) }}
- name: AVATARFLOW_JWT_SECRET
  valueFrom:
    secretKeyRef: { name: {{ $s.jwt.existingSecret | quote }}, key: {{ $s.jwt.secretKey | quote }} }
{{- end }}
{{- if has .name (list "notifier" "migrate") }}
- name: AVATARFLOW_DATABASE_URL
  valueFrom:
    secretKeyRef: { name: {{ $s.database.existingSecret | quote }}, key: {{ $s.database.urlKey | quote }} }
{{- end }}
{{- $tracing := .root.Values.config.tracing }}
{{- if and (ne $tracing.exporter "none") $tracing.headersSecret.name }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef: { name: {{ $tracing.headersSecret.name | quote }}, key: {{ $tracing.headersSecret.key | quote }} }
{{- end }}
{{- end -}}

{{/* ---------------------------------------------------------------- pod building blocks */}}

{{- define "avatarflow.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "avatarflow.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.tmpSizeLimit }}
- name: cache
  emptyDir:
    sizeLimit: {{ .Values.scratch.cacheSizeLimit }}
{{- end -}}

{{- define "avatarflow.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: cache
  mountPath: /var/cache/avatarflow
{{- end -}}

{{/* Env list for hook Jobs, which run before the release's ConfigMaps exist. */}}
{{- define "avatarflow.inlineEnv" -}}
{{- range $k, $v := (include "avatarflow.commonConfig" .root | fromYaml) }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- range $k, $v := (include "avatarflow.serviceConfig" (dict "root" .root "name" .name "svc" .svc) | fromYaml) }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- include "avatarflow.secretEnv" (dict "root" .root "name" .name) }}
{{- end -}}
