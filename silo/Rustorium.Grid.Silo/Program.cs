using Rustorium.Grid.Silo;

return await GridSilo.RunAsync(args, Console.Out, Console.Error);
