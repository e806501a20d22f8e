// finetune-gitops: the Azure side of the loop, deployed into the resource group of an existing Azure ML workspace.
//   storage (ledger, dead-letter and deployment containers; the step queue and its poison queue)
//   -> Log Analytics + Application Insights (the functions' logs)
//   -> Function App on Flex Consumption (FC1: Linux Consumption, Y1, retires 2028-09-30), Python 3.11, system identity
//   -> role assignments -> Event Grid system topic on the workspace -> subscription to on_job_event
//   -> with environments (gitops.yaml): the same on each later workspace (environment.bicep), and the registry's
//      role (registry.bicep).
// Deploy twice: first with deployEventSubscription=false, publish the function code, then with true
// (Event Grid checks that the function exists when the subscription is created). See docs/deploy.md.

@description('Name of the existing Azure ML workspace (same resource group).')
param workspaceName string

@description('Name of the workspace\'s storage account (az ml workspace show --query storage_account -o tsv, its last segment).')
param workspaceStorageAccountName string

@description('owner/name of the GitHub repository whose workflows may call validate and submit.')
param githubRepository string

@description('Audience the workflows request their OIDC token for.')
param oidcAudience string = 'api://finetune-gitops'

@description('Short prefix of the resources made here (lowercase letters and digits).')
@minLength(3)
@maxLength(11)
param prefix string = 'ftgitops'

param location string = resourceGroup().location

@description('Create the Event Grid subscription (after the function code is published).')
param deployEventSubscription bool = false

@description('The environments after the first of gitops.yaml (environments:), each {name, subscription, resourceGroup, workspace}: the Function gets its roles on each workspace, and each workspace\'s job events (environment.bicep). The first environment is the workspace above.')
param laterEnvironments array = []

@description('The Azure ML registry between the environments (gitops.yaml registry: name), and its resource group; empty: none.')
param registryName string = ''
param registryResourceGroup string = resourceGroup().name

@description('6-field NCRONTAB schedules (UTC).')
param reconcileSchedule string = '0 */10 * * * *'
param cleanupSchedule string = '0 7 * * * *'
@description('When the watch looks for retirements, newer model versions, quota and drift (NCRONTAB, UTC).')
param watchSchedule string = '0 0 6 * * 1'

// The dashboard (/api/dashboard): served only behind App Service authentication with Microsoft Entra ID, and only to
// the principals or groups listed here. Without an app registration's client id, authentication stays off and the
// dashboard serves nothing (the app refuses a principal header it cannot trust).
@description('Client id of the Entra app registration the dashboard signs in with (empty: no dashboard).')
param dashboardClientId string = ''
@description('Who may read the dashboard: Entra object ids or user principal names, comma-separated.')
param dashboardPrincipals string = ''
@description('Entra group object ids whose members may read the dashboard, comma-separated (the token must carry groups).')
param dashboardGroups string = ''

var suffix = uniqueString(resourceGroup().id, workspaceName)
var storageName = toLower('${prefix}${take(suffix, 12)}')
var ledgerContainer = 'gitops-ledger'
var deadLetterContainer = 'event-deadletter'
var deploymentContainer = 'function-packages'
// The step queue (function `advance`); the host moves a message that keeps failing to '<name>-poison'.
var stepQueue = 'gitops-steps'
// Built-in role definition ids.
var roleAzureMLDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
var roleStorageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var roleMonitoringReader = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'
var roleStorageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var roleStorageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var roleStorageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

// The workspace's own storage account (its default datastore), in the same resource group: the promotion gate reads
// the runs' held-out test splits from it. (A name from the workspace's properties cannot name an existing resource:
// Bicep needs it at the start of the deployment, hence the parameter.)
resource workspaceStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: workspaceStorageAccountName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource ledger 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: ledgerContainer
  properties: { publicAccess: 'None' }
}

resource deadLetter 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainer
  properties: { publicAccess: 'None' }
}

resource packages 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
  properties: { publicAccess: 'None' }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource steps 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: stepQueue
}

resource stepsPoison 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${stepQueue}-poison'
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${prefix}-logs-${take(suffix, 6)}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${prefix}-ai-${take(suffix, 6)}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${prefix}-plan-${take(suffix, 6)}'
  location: location
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  kind: 'functionapp'
  properties: { reserved: true }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: '${prefix}-fn-${take(suffix, 8)}'
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      // Flex Consumption takes the runtime from functionAppConfig above, never from a worker-runtime setting.
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'PYTHON_SCRIPT_FILE_NAME', value: 'functions_entry.py' }
        { name: 'AZURE_SUBSCRIPTION_ID', value: subscription().subscriptionId }
        { name: 'AZURE_RESOURCE_GROUP', value: resourceGroup().name }
        { name: 'AZUREML_WORKSPACE_NAME', value: workspaceName }
        { name: 'GITOPS_REPO', value: githubRepository }
        { name: 'GITOPS_OIDC_AUDIENCE', value: oidcAudience }
        { name: 'GITOPS_LEDGER_ACCOUNT_URL', value: storage.properties.primaryEndpoints.blob }
        { name: 'GITOPS_LEDGER_CONTAINER', value: ledgerContainer }
        { name: 'GITOPS_RECONCILE_SCHEDULE', value: reconcileSchedule }
        { name: 'GITOPS_CLEANUP_SCHEDULE', value: cleanupSchedule }
        { name: 'GITOPS_WATCH_SCHEDULE', value: watchSchedule }
        // The step queue, with the identity: the queue trigger's connection "GITOPS_QUEUE" and the sender read it.
        { name: 'GITOPS_QUEUE__queueServiceUri', value: storage.properties.primaryEndpoints.queue }
        { name: 'GITOPS_QUEUE_NAME', value: stepQueue }
        { name: 'GITOPS_UI_ALLOWED_PRINCIPALS', value: dashboardPrincipals }
        { name: 'GITOPS_UI_ALLOWED_GROUPS', value: dashboardGroups }
      ]
    }
  }
}

// App Service authentication (Easy Auth) in front of the dashboard: a browser without a session is sent to Entra
// sign-in; the platform then sets X-MS-CLIENT-PRINCIPAL and strips any such header a client sent. The workflows'
// routes carry GitHub OIDC tokens, not Entra ones: they are excluded here and keep their own checks (auth.py).
resource dashboardAuth 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(dashboardClientId)) {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/validate'
        '/api/submit'
        '/api/runs'
        '/api/watch'
        '/api/promotions'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: dashboardClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [ 'api://${dashboardClientId}', dashboardClientId ]
        }
      }
    }
    login: { tokenStore: { enabled: false } }
    httpSettings: { requireHttps: true }
  }
}

resource canUseWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, functionApp.id, roleAzureMLDataScientist)
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleAzureMLDataScientist)
  }
}

resource canReadMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, functionApp.id, roleMonitoringReader)
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleMonitoringReader)
  }
}

resource canReadHeldOutSplits 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspaceStorage
  name: guid(workspaceStorage.id, functionApp.id, roleStorageBlobDataReader)
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageBlobDataReader)
  }
}

resource canWriteLedger 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionApp.id, roleStorageBlobDataContributor)
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageBlobDataContributor)
  }
}

// The host's own storage (AzureWebJobsStorage with the identity) and the deployment package container.
resource canUseHostStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionApp.id, roleStorageBlobDataOwner)
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageBlobDataOwner)
  }
}

// Send, receive and delete step messages (and the host's poison moves).
resource canUseStepQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionApp.id, roleStorageQueueDataContributor)
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageQueueDataContributor)
  }
}

resource jobEvents 'Microsoft.EventGrid/systemTopics@2023-12-15-preview' = {
  name: '${prefix}-ml-events'
  location: location
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

resource toJobEventFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2023-12-15-preview' = if (deployEventSubscription) {
  parent: jobEvents
  name: 'gitops-job-events'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/on_job_event'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.MachineLearningServices.RunCompleted'
        'Microsoft.MachineLearningServices.RunStatusChanged'
      ]
      // Only our runs: Event Grid filter keys cannot contain '.', hence the dot-free tag gitops_run.
      advancedFilters: [
        { operatorType: 'IsNotNull', key: 'data.runTags.gitops_run' }
      ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
    deadLetterDestination: {
      endpointType: 'StorageBlob'
      properties: {
        resourceId: storage.id
        blobContainerName: deadLetterContainer
      }
    }
  }
}

// A later environment's workspace: roles and job events, in its own resource group (environment.bicep).
module laterEnvironment 'environment.bicep' = [for env in laterEnvironments: {
  name: 'gitops-environment-${env.name}'
  scope: resourceGroup(env.subscription, env.resourceGroup)
  params: {
    environmentName: env.name
    workspaceName: env.workspace
    principalId: functionApp.identity.principalId
    functionAppId: functionApp.id
    deadLetterStorageId: storage.id
    deadLetterContainer: deadLetterContainer
    deployEventSubscription: deployEventSubscription
    prefix: prefix
  }
}]

// The registry that carries models between the environments (registry.bicep).
module registryAccess 'registry.bicep' = if (!empty(registryName)) {
  name: 'gitops-registry-access'
  scope: resourceGroup(registryResourceGroup)
  params: {
    registryName: registryName
    principalId: functionApp.identity.principalId
    functionAppId: functionApp.id
  }
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output ledgerAccountUrl string = storage.properties.primaryEndpoints.blob
output principalId string = functionApp.identity.principalId
output applicationInsightsName string = insights.name
output storageAccountName string = storage.name
output eventGridSystemTopicName string = jobEvents.name
