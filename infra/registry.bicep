// finetune-gitops: the Function's access to the Azure ML registry that carries models between environments
// (gitops.yaml registry:), deployed by main.bicep into the registry's resource group when `registryName` is set.
// AzureML Registry User: it shares a model version into the registry and reads it (and its tags) back.
targetScope = 'resourceGroup'

@description('Name of the existing Azure ML registry (in this resource group).')
param registryName string

@description('The Function App\'s managed identity (its principalId).')
param principalId string

@description('The Function App\'s resource id (part of the role assignment\'s name).')
param functionAppId string

var roleAzureMLRegistryUser = '1823dd4f-9b8c-4ab6-ab4e-7397a3684615'

resource registry 'Microsoft.MachineLearningServices/registries@2024-04-01' existing = {
  name: registryName
}

resource canUseRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registry
  name: guid(registry.id, functionAppId, roleAzureMLRegistryUser)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleAzureMLRegistryUser)
  }
}
