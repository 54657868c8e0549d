{{/*
Chart name, truncated to the 63 characters a label value may hold.
*/}}
{{- define "strom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name used as the prefix of every object: release name, plus the chart name unless the
release name already holds it.
*/}}
{{- define "strom.fullname" -}}
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

{{/*
Name of the operator's own objects (Deployment, Service, roles).
*/}}
{{- define "strom.operatorName" -}}
{{- printf "%s-operator" (include "strom.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strom.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable across upgrades, so they never include the version.
*/}}
{{- define "strom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Labels of every object, without the component (objects that are not the operator itself, such
as rules, dashboards and the Cluster, use these). Built as a map so that commonLabels can add
labels but never duplicate or replace the standard ones.
*/}}
{{- define "strom.baseLabels" -}}
{{- $standard := dict
      "helm.sh/chart" (include "strom.chart" .)
      "app.kubernetes.io/name" (include "strom.name" .)
      "app.kubernetes.io/instance" .Release.Name
      "app.kubernetes.io/version" .Chart.AppVersion
      "app.kubernetes.io/managed-by" .Release.Service
      "app.kubernetes.io/part-of" "strom" }}
{{- toYaml (merge $standard (deepCopy (.Values.commonLabels | default dict))) }}
{{- end }}

{{/*
Labels of the operator's objects.
*/}}
{{- define "strom.labels" -}}
{{- toYaml (merge (include "strom.selectorLabels" . | fromYaml) (include "strom.baseLabels" . | fromYaml)) }}
{{- end }}

{{- define "strom.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "strom.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "strom.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.leaseNamespace }}
{{- end }}

{{/*
Image reference from {registry, repository, tag, digest}: a digest pins the image and wins over
the tag; the tag defaults to the chart's appVersion.
Call with (dict "image" .Values.image "context" $).
*/}}
{{- define "strom.imageRef" -}}
{{- $image := .image }}
{{- $repo := $image.repository }}
{{- if $image.registry }}
{{- $repo = printf "%s/%s" $image.registry $image.repository }}
{{- end }}
{{- if $image.digest }}
{{- printf "%s@%s" $repo $image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .context.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/*
RBAC: operator/src/rbac.rs holds the operator's permissions as one table; these three lists are
that table split by scope, rule for rule (e2e/tests/chart.rs fails when they differ). Children
are removed by garbage collection through owner references and brokers are restarted by pod
eviction (which honours the PodDisruptionBudget), so there is no delete verb.

Permissions in every namespace the operator watches.
*/}}
{{- define "strom.namespacedRules" -}}
- apiGroups: ["strom.io"]
  resources: ["clusters", "topics"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["strom.io"]
  resources: ["clusters/status", "topics/status"]
  verbs: ["get", "patch"]
- apiGroups: ["strom.io"]
  resources: ["clusters/finalizers", "topics/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "create", "patch"]
{{- end }}

{{/*
Cluster-scoped permissions: whether the ServiceMonitor CRD is installed.
*/}}
{{- define "strom.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get"]
{{- end }}

{{/*
Permissions on the leader-election Lease, granted in the lease namespace only.
*/}}
{{- define "strom.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end }}
