{{/* Names and labels. No helm.sh/chart or managed-by labels: the default render equals the plain
manifests in deploy/manifests (tests/test_deploy.py). */}}

{{- define "bgpsvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bgpsvc.fullname" -}}
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

{{- define "bgpsvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bgpsvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "bgpsvc.labels" -}}
{{ include "bgpsvc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: speaker
{{- end }}

{{/* Whether the container must hold NET_BIND_SERVICE: it listens on a port below 1024. */}}
{{- define "bgpsvc.bindsPrivilegedPort" -}}
{{- if and .Values.listen.enabled (lt (int .Values.listen.port) 1024) }}true{{ end }}
{{- end }}

{{/*
The speaker config (bgpsvc/config.py) built from the values. toYaml quotes strings that YAML 1.1 would read
as something else (the community "64512:10" would be a base-60 integer to PyYAML), so values survive.
*/}}
{{- define "bgpsvc.config" -}}
{{- $v := .Values }}
{{- $cfg := dict "local_as" $v.localAS "drain_time" $v.drainTime "shutdown_message" $v.shutdownMessage }}
{{- $_ := set $cfg "control" (dict "address" $v.control.address "port" $v.control.port) }}
{{- $_ := set $cfg "peers" $v.peers }}
{{- if $v.routerID }}
{{- $_ := set $cfg "router_id" $v.routerID }}
{{- end }}
{{- if $v.listen.enabled }}
{{- $listen := list }}
{{- range $v.listen.addresses }}
{{- $listen = append $listen (dict "address" . "port" $v.listen.port) }}
{{- end }}
{{- $_ := set $cfg "listen" $listen }}
{{- else }}
{{- $_ := set $cfg "listen" false }}
{{- end }}
{{- if $v.gracefulRestart }}
{{- $_ := set $cfg "graceful_restart" (dict "restart_time" $v.gracefulRestart.restartTime) }}
{{- end }}
{{- $kube := dict "service_cluster_ips" $v.serviceClusterIPs "service_external_ips" $v.serviceExternalIPs }}
{{- $_ := set $kube "service_loadbalancer_ips" $v.serviceLoadBalancerIPs }}
{{- if $v.endpointPolicy }}
{{- $_ := set $kube "endpoint_policy" $v.endpointPolicy }}
{{- end }}
{{- $attrs := dict }}
{{- range $class, $communities := $v.communities }}
{{- if $communities }}
{{- $_ := set $attrs $class (dict "communities" $communities) }}
{{- end }}
{{- end }}
{{- if $attrs }}
{{- $_ := set $kube "attributes" $attrs }}
{{- end }}
{{- $_ := set $cfg "kubernetes" $kube }}
{{- toYaml (mergeOverwrite $cfg (deepCopy $v.extraConfig)) }}
{{- end }}
