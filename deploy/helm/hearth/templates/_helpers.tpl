{{/* Names and labels shared by every object of the chart. */}}
{{- define "hearth.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hearth.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hearth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hearth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hearth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "hearth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "hearth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hearth.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "hearth.secretName" -}}
{{- default (printf "%s-api-key" (include "hearth.fullname" .)) .Values.apiKey.existingSecret -}}
{{- end -}}

{{- define "hearth.hasKey" -}}
{{- if or .Values.apiKey.existingSecret .Values.apiKey.value -}}true{{- end -}}
{{- end -}}

{{- define "hearth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Memory request in MiB: weights + KV cache + runtime overhead (docs/deploy.md, sizing). */}}
{{- define "hearth.memoryMiB" -}}
{{- $gib := addf .Values.model.weightsGiB .Values.model.kvCacheGiB .Values.model.overheadGiB -}}
{{- mulf $gib 1024 | ceil | int -}}
{{- end -}}

{{- define "hearth.resources" -}}
{{- if .Values.resources -}}
{{- toYaml .Values.resources -}}
{{- else -}}
{{- $mem := include "hearth.memoryMiB" . | int -}}
requests:
  cpu: {{ .Values.cpu.request | quote }}
  memory: {{ printf "%dMi" $mem }}
limits:
  cpu: {{ .Values.cpu.limit | quote }}
  # A quarter above the request: a model's resident size grows while it compiles.
  memory: {{ printf "%dMi" (add $mem (div $mem 4)) }}
{{- end -}}
{{- end -}}
