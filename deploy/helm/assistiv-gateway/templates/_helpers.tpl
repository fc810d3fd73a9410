{{- define "gateway.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gateway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gateway.headless" -}}
{{- printf "%s-headless" (include "gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gateway.labels" -}}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Secret holding the keys: the existing one or the chart's. */}}
{{- define "gateway.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "gateway.fullname" .) -}}
{{- end -}}

{{/* Checks that fail the render with one clear message each. */}}
{{- define "gateway.validate" -}}
{{- if and .Values.cluster.enabled (not .Values.secrets.existingSecret) -}}
{{- if not .Values.secrets.postgresURL -}}
{{- fail "cluster mode needs Postgres: set secrets.postgresURL or secrets.existingSecret" -}}
{{- end -}}
{{- if not .Values.secrets.clusterKey -}}
{{- fail "cluster mode needs secrets.clusterKey (openssl rand -base64 32) or secrets.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if lt (len .Values.secrets.adminKey) 16 -}}
{{- fail "set secrets.adminKey (at least 16 characters) or secrets.existingSecret: every pod must share one admin key" -}}
{{- end -}}
{{- if not .Values.secrets.masterKey -}}
{{- fail "set secrets.masterKey (openssl rand -base64 32) or secrets.existingSecret: every pod must share one master key" -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.cluster.enabled) (gt (int .Values.replicaCount) 1) -}}
{{- fail "replicaCount > 1 needs cluster.enabled: without it each pod would be a separate gateway with its own data" -}}
{{- end -}}
{{- end -}}

{{/* The join seeds: the first pods' stable names in the headless Service. */}}
{{- define "gateway.seeds" -}}
{{- $fullname := include "gateway.fullname" . -}}
{{- $headless := include "gateway.headless" . -}}
{{- $n := min (int .Values.cluster.seeds) (int .Values.replicaCount) -}}
{{- $seeds := list -}}
{{- range $i := until (int $n) -}}
{{- $seeds = append $seeds (printf "%s-%d.%s.%s.svc.cluster.local:%d" $fullname $i $headless $.Release.Namespace (int $.Values.cluster.memberlistPort)) -}}
{{- end -}}
{{- join "," $seeds -}}
{{- end -}}
