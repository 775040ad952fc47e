{{- define "tiercache.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tiercache.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tiercache.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "tiercache.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tiercache.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tiercache.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
What the operator does inside a namespace it manages: read CacheClusters and write their status;
restart Redis pods; manage the objects a CacheCluster owns; record events.
*/}}
{{- define "tiercache.namespacedRules" -}}
- apiGroups: [tiercache.io]
  resources: [cacheclusters]
  verbs: [get, list, watch]
- apiGroups: [tiercache.io]
  resources: [cacheclusters/status]
  verbs: [get, patch, update]
- apiGroups: [tiercache.io]
  resources: [cacheclusters/finalizers]
  verbs: [update]
- apiGroups: [tiercache.io]
  # create and delete: the schedule makes backups, retention deletes the oldest
  resources: [cacheclusterbackups]
  verbs: [get, list, watch, create, delete]
- apiGroups: [tiercache.io]
  resources: [cacheclusterbackups/status]
  verbs: [get, patch, update]
- apiGroups: [batch]
  # the Jobs that take and restore backups
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [cert-manager.io]
  # the Certificate asked for by spec.redis.tls.issuerRef
  resources: [certificates]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [pods]
  # delete: rolling changes restart Redis pods one at a time (StatefulSets are OnDelete)
  verbs: [get, list, watch, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  # Read by name (the auth Secrets a CacheCluster names or owns), never listed or watched.
  resources: [secrets]
  verbs: [get, create, patch, update]
- apiGroups: [""]
  # patch: a grown persistence.size expands the Redis pods' claims in place; create: the backup claim
  resources: [persistentvolumeclaims]
  verbs: [get, list, create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [apps]
  resources: [statefulsets, deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, update, delete]
{{- end }}
