from django.urls import include, path

urlpatterns = [path("derivatives/", include("fileresponse.derivatives.urls"))]
