{{/* Names, labels and image references shared by every template of the chart. */}}

{{- define "swg-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-<chart>", or the release name alone when it already contains the chart name. */}}
{{- define "swg-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "swg-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "swg-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "swg-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "swg-operator.labels" -}}
helm.sh/chart: {{ include "swg-operator.chart" . }}
{{ include "swg-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: swg-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "swg-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "swg-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: "repo:tag", or "repo:tag@sha256:..." when a
digest is pinned (the runtime pulls by digest; the tag is kept for people). The tag defaults to
the chart's appVersion.
Usage: include "swg-operator.image" (dict "image" .Values.image "context" $)
*/}}
{{- define "swg-operator.image" -}}
{{- $tag := default .context.Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* The container security context every container of the chart uses (securityContext). */}}
{{- define "swg-operator.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{- define "swg-operator.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/*
The tenant admins' ClusterRole (tenant-reader.yaml). Its name is fixed: the operator's
RoleBindings name it (swg_operator.naming.tenant_reader_cluster_role_name), and one operator
serves a cluster.
*/}}
{{- define "swg-operator.tenantReaderRole" -}}
swg-tenant-reader
{{- end }}

{{/*
The leader Lease's name: leaderElection.leaseName, else the release's full name.
*/}}
{{- define "swg-operator.leaseName" -}}
{{- default (include "swg-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}
